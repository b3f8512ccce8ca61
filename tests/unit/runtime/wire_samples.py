"""Example tensors of every datatype and their raw wire layout, shared by transport tests.

`raw` writes the layout from the protocol's description, independently of the code under
test: little-endian elements, and for BYTES a 4-byte little-endian length before each.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

# datatype -> a [2, 3] example of it
SAMPLES: dict[str, np.ndarray[Any, Any]] = {
    "BOOL": np.array([[True, False, True], [False, False, True]]),
    "INT8": np.array([[-128, 0, 127], [1, 2, 3]], dtype=np.int8),
    "INT16": np.array([[-32768, 0, 32767], [1, 2, 3]], dtype=np.int16),
    "INT32": np.array([[-(2**31), 0, 2**31 - 1], [1, 2, 3]], dtype=np.int32),
    "INT64": np.array([[-(2**63), 0, 2**63 - 1], [1, 2, 3]], dtype=np.int64),
    "UINT8": np.array([[0, 1, 255], [4, 5, 6]], dtype=np.uint8),
    "UINT16": np.array([[0, 1, 65535], [4, 5, 6]], dtype=np.uint16),
    "UINT32": np.array([[0, 1, 2**32 - 1], [4, 5, 6]], dtype=np.uint32),
    "UINT64": np.array([[0, 1, 2**64 - 1], [4, 5, 6]], dtype=np.uint64),
    "FP16": np.array([[0.5, -1.25, 65504.0], [1.0, 2.0, 3.0]], dtype=np.float16),
    "FP32": np.array([[0.1, -2.5, 3.4e38], [1.0, 2.0, 3.0]], dtype=np.float32),
    "FP64": np.array([[0.1, -2.5, 1e300], [1.0, 2.0, 3.0]], dtype=np.float64),
    "BYTES": np.array([[b"a", b"", "é".encode()], [b"xyz", b"0", b"1"]], dtype=object),
}


def raw(datatype: str, array: np.ndarray[Any, Any]) -> bytes:
    """The binary extension's layout, written independently of the code under test."""
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(item)) + item for item in array.reshape(-1))
    return array.astype(array.dtype.newbyteorder("<")).tobytes()
