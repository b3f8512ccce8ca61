"""Check a request against the model's metadata before it goes anywhere near the model.

Pure functions. Every problem is caught here, per request, so a bad request is
refused with a message naming the input, what was expected and what came, and
never reaches a batch where it could fail its neighbours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from sluice_runtime.datatypes import numpy_dtype
from sluice_runtime.errors import InvalidInput
from sluice_runtime.tensors import InferRequest, ModelMetadata, Tensor, TensorSpec

Array = np.ndarray[Any, Any]


class ValidRequest(NamedTuple):
    """A request's inputs as model-ready arrays, keyed and ordered as the model declares them.

    `rows` is the size of the batch dimension (1 when the model has none), which is what
    the batcher counts against the max batch size. A named tuple: one is made per request,
    and a frozen dataclass costs three times as much to build.
    """

    inputs: dict[str, Array]
    rows: int
    output_names: tuple[str, ...]


def format_shape(shape: Sequence[int]) -> str:
    """[-1, 64] the way the protocol spells shapes, so messages match what clients send."""
    return "[" + ", ".join(str(dim) for dim in shape) + "]"


def _shape_matches(expected: Sequence[int], got: Sequence[int]) -> bool:
    if len(expected) != len(got):
        return False
    # A loop, not all() over a generator: this runs for every request.
    for want, have in zip(expected, got, strict=True):  # noqa: SIM110
        if want != have and want != -1:
            return False
    return True


def _check_tensor(spec: TensorSpec, tensor: Tensor) -> Array:
    # Every request passes here: the messages are built only on the way to an error.
    shape = tuple(tensor.shape)
    if tensor.datatype != spec.datatype:
        raise InvalidInput(
            f"{_where(spec)}: expected datatype {spec.datatype}, got {tensor.datatype}"
        )
    if shape and min(shape) < 0:
        raise InvalidInput(f"{_where(spec)}: shape {format_shape(shape)} has a negative dimension")
    if not _shape_matches(spec.shape, shape):
        raise InvalidInput(
            f"{_where(spec)}: expected shape {format_shape(spec.shape)}, got {format_shape(shape)}"
        )
    data = tensor.data
    expected_count = math.prod(shape)
    if data.size != expected_count:
        raise InvalidInput(
            f"{_where(spec)}: shape {format_shape(shape)} holds {expected_count} elements, "
            f"got {data.size}"
        )
    if data.shape != shape:
        data = data.reshape(shape)
    return _model_ready(spec, data)


def _where(spec: TensorSpec) -> str:
    return f"input {spec.name!r}"


def _model_ready(spec: TensorSpec, data: Array) -> Array:
    """Give the model the dtype it declares; ONNX strings are UTF-8 text, not raw bytes."""
    if spec.datatype != "BYTES":
        dtype = numpy_dtype(spec.datatype)
        return data if data.dtype == dtype else data.astype(dtype)
    text = np.empty(data.shape, dtype=object)
    flat = text.reshape(-1)
    for index, item in enumerate(data.reshape(-1)):
        if isinstance(item, str):
            flat[index] = item
            continue
        try:
            flat[index] = bytes(item).decode("utf-8")
        except (UnicodeDecodeError, TypeError):
            raise InvalidInput(
                f"{_where(spec)}: element {index} is not UTF-8 text (ONNX strings are UTF-8)"
            ) from None
    return text


def _batch_rows(metadata: ModelMetadata, inputs: dict[str, Array]) -> int:
    if metadata.max_batch_size == 0:
        return 1
    rows = {name: array.shape[0] for name, array in inputs.items()}
    if len(set(rows.values())) > 1:
        found = ", ".join(f"{name!r} has {count}" for name, count in rows.items())
        raise InvalidInput(f"inputs disagree on the batch dimension: {found}")
    return int(next(iter(rows.values())))


def _output_names(metadata: ModelMetadata, request: InferRequest) -> tuple[str, ...]:
    known = [spec.name for spec in metadata.outputs]
    if request.outputs is None:
        return tuple(known)
    names = tuple(output.name for output in request.outputs)
    for name in names:
        if name not in known:
            raise InvalidInput(
                f"unknown output {name!r}; the model has {', '.join(map(repr, known))}"
            )
    if len(set(names)) != len(names):
        raise InvalidInput("an output is requested more than once")
    return names


def validate(metadata: ModelMetadata, request: InferRequest) -> ValidRequest:
    """Return the request's model-ready inputs, or raise InvalidInput saying what is wrong."""
    given: dict[str, Tensor] = {}
    for tensor in request.inputs:
        if tensor.name in given:
            raise InvalidInput(f"input {tensor.name!r} is given more than once")
        given[tensor.name] = tensor
    expected = {spec.name: spec for spec in metadata.inputs}
    for name in given:
        if name not in expected:
            raise InvalidInput(
                f"unexpected input {name!r}; the model takes {', '.join(map(repr, expected))}"
            )
    inputs: dict[str, Array] = {}
    for spec in metadata.inputs:
        if spec.name not in given:
            raise InvalidInput(
                f"missing input {spec.name!r}: expected {spec.datatype} {format_shape(spec.shape)}"
            )
        inputs[spec.name] = _check_tensor(spec, given[spec.name])
    return ValidRequest(
        inputs=inputs,
        rows=_batch_rows(metadata, inputs),
        output_names=_output_names(metadata, request),
    )
