"""Inputs and expected answers shared by the protocol tests of both transports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tritonclient.utils import triton_to_np_dtype

from tests.models import ONNX_TYPES

Array = np.ndarray[Any, Any]


def reference(model: Path, feed: dict[str, Array]) -> dict[str, Array]:
    """ONNX Runtime's own answer on the same inputs, with no Sluice in between."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, feed), strict=True))


def all_types_feed() -> dict[str, Array]:
    """A [2, 3] input per datatype of the identity model, extremes of each integer type."""
    rng = np.random.default_rng(5)
    feed: dict[str, Array] = {}
    for datatype in ONNX_TYPES:
        name = f"in_{datatype}"
        if datatype == "BYTES":
            feed[name] = np.array([["a", "bé", ""], ["x" * 40, "0", "zz"]], dtype=object)
        elif datatype == "BOOL":
            feed[name] = rng.integers(0, 2, (2, 3)).astype(bool)
        elif datatype.startswith("FP"):
            feed[name] = rng.standard_normal((2, 3)).astype(triton_to_np_dtype(datatype))
        else:
            info = np.iinfo(triton_to_np_dtype(datatype))
            feed[name] = np.array(
                [[info.min, 0, info.max], [1, 2, 3]], dtype=triton_to_np_dtype(datatype)
            )
    return feed
