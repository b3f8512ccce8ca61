"""Tensor element encodings shared by the REST and gRPC transports.

Both protocols carry tensors either as raw bytes (REST's binary tensor extension, gRPC's
raw_input_contents / raw_output_contents) or as lists of values (REST JSON `data`, gRPC typed
contents). The raw layout is the same on both: little-endian elements in row-major order, and
for BYTES each element as a 4-byte little-endian length followed by its bytes. Decoding never
copies fixed-size data: the array is a read-only view of the request buffer.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from sluice_runtime.datatypes import DATATYPES, numpy_dtype
from sluice_runtime.errors import InvalidInput

NDArray = np.ndarray[Any, Any]
Buffer = bytes | bytearray | memoryview

_LENGTH = struct.Struct("<I")
_KNOWN = ", ".join(sorted(DATATYPES))


def dtype_for(name: str, datatype: str) -> np.dtype[Any]:
    """The numpy dtype of a request tensor, or InvalidInput naming the tensor."""
    try:
        return numpy_dtype(datatype)
    except KeyError:
        raise InvalidInput(
            f"input '{name}': unknown datatype {datatype!r}; expected one of {_KNOWN}"
        ) from None


def check_shape(name: str, shape: Any) -> tuple[int, ...]:
    """A shape as a tuple of non-negative ints, or InvalidInput naming the tensor.

    A plain loop rather than all() over a generator: every tensor of every request passes here.
    """
    if isinstance(shape, list | tuple):
        dims = tuple(shape)
        for dim in dims:
            if type(dim) is not int or dim < 0:
                break
        else:
            return dims
    raise InvalidInput(
        f"input '{name}': shape must be a list of non-negative integers, got {shape!r}"
    )


def array_from_raw(name: str, datatype: str, shape: tuple[int, ...], raw: Buffer) -> NDArray:
    """Decodes one tensor's raw bytes; the byte count must match shape and datatype exactly."""
    count = math.prod(shape)
    if datatype == "BYTES":
        return _bytes_from_raw(name, count, raw).reshape(shape)
    dtype = dtype_for(name, datatype)
    expected = count * dtype.itemsize
    if len(raw) != expected:
        raise InvalidInput(
            f"input '{name}': raw data has {len(raw)} bytes but shape {list(shape)} of "
            f"{datatype} needs {expected}"
        )
    # One array over the buffer, not frombuffer's flat one and then a reshaped view of it.
    return np.ndarray(shape, dtype, raw)


def _bytes_from_raw(name: str, count: int, raw: Buffer) -> NDArray:
    view = memoryview(raw)
    size = len(view)
    out = np.empty(count, dtype=object)
    offset = 0
    for index in range(count):
        if offset + 4 > size:
            raise InvalidInput(
                f"input '{name}': raw BYTES data ends after {index} of {count} elements"
            )
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += 4
        end = offset + length
        if end > size:
            raise InvalidInput(
                f"input '{name}': raw BYTES element {index} declares {length} bytes but only "
                f"{size - offset} remain"
            )
        out[index] = bytes(view[offset:end])
        offset = end
    if offset != size:
        raise InvalidInput(
            f"input '{name}': raw BYTES data has {size - offset} bytes after its {count} elements"
        )
    return out


def array_from_values(
    name: str, datatype: str, shape: tuple[int, ...], values: Sequence[Any]
) -> NDArray:
    """Decodes a flat or nested list of values (JSON data, gRPC typed contents) into `shape`.

    BYTES elements may be str (encoded as UTF-8) or bytes.
    """
    array = array_from_nested(name, datatype, values)
    count = math.prod(shape)
    if array.size != count:
        raise InvalidInput(
            f"input '{name}': data has {array.size} elements but shape {list(shape)} needs {count}"
        )
    return array.reshape(shape)


def array_from_nested(name: str, datatype: str, values: Any) -> NDArray:
    """Decodes values whose nesting is their shape (V1 instances carry no explicit shape)."""
    if isinstance(values, str | bytes):
        values = [values]
    if datatype != "BYTES":
        try:
            return np.asarray(values, dtype=dtype_for(name, datatype))
        except (ValueError, TypeError, OverflowError) as error:
            raise InvalidInput(
                f"input '{name}': data is not a rectangular list of {datatype} values: {error}"
            ) from None
    array = np.array(values, dtype=object)
    flat = array.reshape(-1)
    for index, element in enumerate(flat):
        if isinstance(element, str):
            flat[index] = element.encode()
        elif not isinstance(element, bytes):
            raise InvalidInput(
                f"input '{name}': BYTES data must be a rectangular list of strings, "
                f"found {type(element).__name__}"
            )
    return array


def raw_from_array(datatype: str, array: NDArray) -> Buffer:
    """Encodes a tensor as raw bytes; fixed-size data comes back as a view, not a copy."""
    if datatype == "BYTES":
        return _raw_from_bytes(array)
    contiguous = np.ascontiguousarray(array)
    return contiguous.data.cast("B") if contiguous.size else b""


def raw_bytes(datatype: str, array: NDArray) -> bytes:
    """The same encoding as a bytes object, for fields that take nothing else (protobuf):
    one copy straight from the array, where bytes() of the view costs two more calls."""
    if datatype == "BYTES":
        return _raw_from_bytes(array)
    return array.tobytes()  # row-major whatever the array's layout


def _raw_from_bytes(array: NDArray) -> bytes:
    parts: list[bytes] = []
    for element in array.reshape(-1):
        data = element.encode() if isinstance(element, str) else bytes(element)
        parts.append(_LENGTH.pack(len(data)))
        parts.append(data)
    return b"".join(parts)


def text_list(array: NDArray) -> list[str]:
    """BYTES elements as strings, for JSON; raises InvalidInput when one is not UTF-8."""
    out: list[str] = []
    for element in array.reshape(-1):
        if isinstance(element, str):
            out.append(element)
            continue
        try:
            out.append(bytes(element).decode())
        except UnicodeDecodeError:
            raise InvalidInput(
                "a BYTES output is not UTF-8 text and cannot be sent as JSON; "
                "ask for it with binary_data"
            ) from None
    return out
