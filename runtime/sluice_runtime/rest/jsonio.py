"""JSON encoding for REST bodies: orjson, with numpy arrays and scalars written natively."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from sluice_runtime.errors import InvalidInput


def loads(body: bytes | bytearray | memoryview) -> Any:
    """Parses a request body; malformed JSON is the client's error (400), not ours."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidInput(f"request body is not valid JSON: {error}") from None


def dumps(doc: Any) -> bytes:
    """Serializes without a tolist() round trip, except where orjson cannot (object arrays)."""
    return orjson.dumps(doc, default=_fallback, option=orjson.OPT_SERIALIZE_NUMPY)


def _fallback(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
