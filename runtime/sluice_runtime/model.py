"""The ONNX Runtime session: the only module that imports onnxruntime.

It turns a verified model file into a session on the chosen device and
describes the model's tensors as protocol metadata; everything above it sees
numpy arrays in and out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from sluice_runtime.cuda_wait import set_cuda_wait
from sluice_runtime.datatypes import datatype_of_onnx
from sluice_runtime.errors import ModelLoadError
from sluice_runtime.tensors import ModelMetadata, TensorSpec

log = logging.getLogger(__name__)

PLATFORM = "onnxruntime_onnx"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

Arrays = dict[str, np.ndarray[Any, Any]]


@dataclass(frozen=True, slots=True)
class DevicePlan:
    """Which execution providers to ask ONNX Runtime for, in order of preference."""

    providers: tuple[str, ...]
    require_cuda: bool


def plan_device(device: str, available: Sequence[str]) -> DevicePlan:
    """Pick providers for `--device`: cuda demands CUDA, auto takes it when it is there."""
    if device == "cpu":
        return DevicePlan((CPU,), require_cuda=False)
    if CUDA in available:
        return DevicePlan((CUDA, CPU), require_cuda=device == "cuda")
    if device == "cuda":
        raise ModelLoadError(
            f"--device cuda: onnxruntime offers no {CUDA} "
            f"(available: {', '.join(available)}); install the gpu extra (onnxruntime-gpu)"
        )
    return DevicePlan((CPU,), require_cuda=False)


def device_of(providers: Sequence[str]) -> str:
    """The device a session runs on, from the providers it actually took."""
    return "cuda" if providers and providers[0] == CUDA else "cpu"


def session_options(intra_op_threads: int) -> ort.SessionOptions:
    """Options for a session that shares its cores with an event loop.

    Idle pool threads sleep instead of spinning: a spinning thread would take the CPU
    the loop needs to read the next requests. 0 threads leaves the count to ONNX Runtime
    (one per physical core of the host, which a CPU-limited pod should override).
    """
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = intra_op_threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def _dims(shape: Sequence[Any]) -> tuple[int, ...]:
    # Symbolic ("batch") and unknown (None) dimensions are dynamic: -1 in the protocol.
    return tuple(dim if isinstance(dim, int) and dim >= 0 else -1 for dim in shape)


def _specs(args: Sequence[Any]) -> tuple[TensorSpec, ...]:
    specs = []
    for arg in args:
        try:
            datatype = datatype_of_onnx(arg.type)
        except ValueError as error:
            raise ModelLoadError(f"tensor {arg.name!r}: {error}") from None
        specs.append(TensorSpec(name=arg.name, datatype=datatype, shape=_dims(arg.shape)))
    return tuple(specs)


def batchable(inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]) -> bool:
    """True when every input and output has a dynamic first dimension to merge along."""
    tensors = [*inputs, *outputs]
    return bool(inputs) and all(spec.shape and spec.shape[0] == -1 for spec in tensors)


class OnnxModel:
    """One loaded model; `run` is thread-safe and releases the GIL while the graph runs."""

    def __init__(
        self,
        path: Path,
        *,
        name: str,
        version: str,
        digest: str,
        device: str,
        max_batch_size: int,
        intra_op_threads: int = 0,
        cuda_wait: str = "block",
    ) -> None:
        plan = plan_device(device, ort.get_available_providers())
        if CUDA in plan.providers:
            set_cuda_wait(cuda_wait)
        options = session_options(intra_op_threads)
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=options, providers=list(plan.providers)
            )
        except Exception as error:  # onnxruntime raises its own unexported exception types
            raise ModelLoadError(f"onnxruntime cannot load {path}: {error}") from error
        taken = self._session.get_providers()
        if plan.require_cuda and device_of(taken) != "cuda":
            raise ModelLoadError(
                f"--device cuda: the session fell back to {', '.join(taken)}; is a GPU present?"
            )
        inputs = _specs(self._session.get_inputs())
        outputs = _specs(self._session.get_outputs())
        self.metadata = ModelMetadata(
            name=name,
            version=version,
            platform=PLATFORM,
            inputs=inputs,
            outputs=outputs,
            max_batch_size=max_batch_size if batchable(inputs, outputs) else 0,
            device=device_of(taken),
            digest=digest,
        )
        self._output_names = [spec.name for spec in outputs]
        # Passed to every run: without options, onnxruntime makes default ones per call.
        self._run_options = ort.RunOptions()
        self._text_outputs = [spec.name for spec in outputs if spec.datatype == "BYTES"]
        log.info(
            "loaded %s version %s on %s (providers %s)",
            name,
            version,
            self.metadata.device,
            ", ".join(taken),
        )

    def run(self, inputs: Arrays) -> Arrays:
        """Run the graph once and return every output by name (`inputs` is not changed)."""
        values = self._session.run(self._output_names, inputs, self._run_options)
        outputs = dict(zip(self._output_names, values, strict=True))
        for name in self._text_outputs:
            outputs[name] = utf8_bytes(outputs[name])
        return outputs


def utf8_bytes(text: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """ONNX Runtime hands strings back as str; the protocol's BYTES are bytes."""
    encoded = np.empty(text.shape, dtype=object)
    encoded.reshape(-1)[:] = [str(item).encode("utf-8") for item in text.reshape(-1)]
    return encoded
