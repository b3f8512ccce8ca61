"""The V1 (TensorFlow Serving style) `:predict` body <-> transport-neutral types.

V1 bodies carry no datatypes or shapes: they come from the model metadata and the nesting
of the values. `instances` is row format (one entry per example; a dict per example for
models with several inputs) and answers with `predictions`; `inputs` is column format (a
value for a single-input model, else a dict by input name) and answers with `outputs`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from sluice_runtime.errors import InvalidInput
from sluice_runtime.rest.jsonio import dumps, loads
from sluice_runtime.tensorcodec import NDArray, array_from_nested, text_list
from sluice_runtime.tensors import InferRequest, InferResponse, ModelMetadata, Tensor, TensorSpec

Style = Literal["instances", "inputs"]


def decode_predict(
    body: bytes, metadata: ModelMetadata, request_id: str
) -> tuple[InferRequest, Style]:
    """Parses a `:predict` body against the model's inputs."""
    doc = loads(body)
    if not isinstance(doc, dict) or ("instances" in doc) == ("inputs" in doc):
        raise InvalidInput("a V1 predict body is a JSON object with 'instances' or 'inputs'")
    style: Style = "instances" if "instances" in doc else "inputs"
    columns = _instance_columns(doc["instances"], metadata) if style == "instances" else None
    if columns is None:
        columns = _input_columns(doc["inputs"], metadata)
    inputs = [_tensor(spec, columns[spec.name]) for spec in metadata.inputs if spec.name in columns]
    return InferRequest(id=request_id, inputs=inputs), style


def _instance_columns(instances: Any, metadata: ModelMetadata) -> dict[str, Any]:
    if not isinstance(instances, list) or not instances:
        raise InvalidInput("'instances' must be a non-empty list, one entry per example")
    names = [spec.name for spec in metadata.inputs]
    if len(names) == 1 and not isinstance(instances[0], dict):
        return {names[0]: instances}
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict):
            raise InvalidInput(
                f"instances[{index}] must be an object keyed by input name ({', '.join(names)})"
            )
        unknown = sorted(set(instance) - set(names))
        if unknown:
            raise InvalidInput(
                f"instances[{index}] has unknown input {unknown[0]!r}; "
                f"the model's inputs are {', '.join(names)}"
            )
        for name in names:
            if name in instance:
                columns[name].append(instance[name])
    return {name: rows for name, rows in columns.items() if rows}


def _input_columns(inputs: Any, metadata: ModelMetadata) -> dict[str, Any]:
    names = [spec.name for spec in metadata.inputs]
    if isinstance(inputs, dict):
        unknown = sorted(set(inputs) - set(names))
        if unknown:
            raise InvalidInput(
                f"'inputs' has unknown input {unknown[0]!r}; the model's inputs are "
                f"{', '.join(names)}"
            )
        return inputs
    if len(names) != 1:
        raise InvalidInput(f"'inputs' must be an object keyed by input name ({', '.join(names)})")
    return {names[0]: inputs}


def _tensor(spec: TensorSpec, values: Any) -> Tensor:
    data = array_from_nested(spec.name, spec.datatype, values)
    return Tensor(spec.name, spec.datatype, data.shape, data)


def encode_predict(response: InferResponse, style: Style) -> bytes:
    """`{"predictions": ...}` by row or `{"outputs": ...}` by column, as the request was."""
    columns = {tensor.name: _json_ready(tensor) for tensor in response.outputs}
    if style == "inputs":
        value: Any = columns if len(columns) > 1 else next(iter(columns.values()))
        return dumps({"outputs": value})
    if len(columns) == 1:
        rows: Any = next(iter(columns.values()))
    else:
        rows = _rows(columns)
    return dumps({"predictions": rows})


def _rows(columns: dict[str, NDArray]) -> list[dict[str, NDArray]]:
    lengths = {len(column) if column.ndim else -1 for column in columns.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise InvalidInput(
            "the model's outputs do not share a first dimension, so they cannot be split into "
            "predictions per instance; send 'inputs' instead of 'instances'"
        )
    count = lengths.pop()
    return [{name: column[index] for name, column in columns.items()} for index in range(count)]


def _json_ready(tensor: Tensor) -> NDArray:
    if tensor.datatype == "BYTES":
        return np.array(text_list(tensor.data), dtype=object).reshape(tensor.data.shape)
    return np.ascontiguousarray(tensor.data)
