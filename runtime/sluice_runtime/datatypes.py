"""Open Inference Protocol datatypes and their numpy and ONNX counterparts.

One table serves REST, gRPC, validation and the model loader, so a datatype is
spelled one way everywhere.
"""

from __future__ import annotations

import numpy as np

# KServe V2 / Triton datatype name -> numpy dtype. BYTES is carried as object arrays of bytes.
_NUMPY_BY_DATATYPE: dict[str, np.dtype[np.generic]] = {
    "BOOL": np.dtype(np.bool_),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(np.object_),
}

_DATATYPE_BY_NUMPY: dict[np.dtype[np.generic], str] = {
    dtype: name for name, dtype in _NUMPY_BY_DATATYPE.items()
}

# ONNX Runtime reports input types as "tensor(<onnx type>)".
_DATATYPE_BY_ONNX: dict[str, str] = {
    "tensor(bool)": "BOOL",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}

# Triton model config spells datatypes with a TYPE_ prefix and STRING for BYTES.
_CONFIG_NAME_BY_DATATYPE: dict[str, str] = {
    name: ("TYPE_STRING" if name == "BYTES" else f"TYPE_{name}") for name in _NUMPY_BY_DATATYPE
}

DATATYPES: frozenset[str] = frozenset(_NUMPY_BY_DATATYPE)


def numpy_dtype(datatype: str) -> np.dtype[np.generic]:
    """The numpy dtype that holds tensors of `datatype`; KeyError for an unknown name."""
    return _NUMPY_BY_DATATYPE[datatype]


def datatype_of(dtype: np.dtype[np.generic]) -> str:
    """The protocol datatype name for a numpy dtype (strings and bytes become BYTES)."""
    if dtype.kind in ("O", "S", "U"):
        return "BYTES"
    return _DATATYPE_BY_NUMPY[np.dtype(dtype)]


def datatype_of_onnx(onnx_type: str) -> str:
    """The protocol datatype for an ONNX Runtime type string such as 'tensor(float)'."""
    try:
        return _DATATYPE_BY_ONNX[onnx_type]
    except KeyError:
        raise ValueError(
            f"ONNX type {onnx_type!r} has no Open Inference Protocol datatype"
        ) from None


def config_datatype(datatype: str) -> str:
    """The Triton model-config spelling of a datatype (TYPE_FP32, TYPE_STRING, ...)."""
    return _CONFIG_NAME_BY_DATATYPE[datatype]


def element_size(datatype: str) -> int:
    """Bytes per element in the raw little-endian encoding; 0 for variable-length BYTES."""
    if datatype == "BYTES":
        return 0
    return _NUMPY_BY_DATATYPE[datatype].itemsize
