"""Open Inference Protocol (V2) REST bodies <-> transport-neutral types, as pure functions.

Requests and responses are JSON, optionally followed by the binary tensor data extension:
the JSON header's length travels in `Inference-Header-Content-Length`, inputs with
`parameters.binary_data_size` take their bytes from what follows the header in order, and
outputs asked for with `binary_data` (or the request-wide `binary_data_output`) are sent the
same way. tritonclient and perf_analyzer use the binary form by default.
"""

from __future__ import annotations

from typing import Any

from sluice_runtime.errors import InvalidInput
from sluice_runtime.rest.jsonio import dumps, loads
from sluice_runtime.tensorcodec import (
    Buffer,
    array_from_raw,
    array_from_values,
    check_shape,
    raw_from_array,
    text_list,
)
from sluice_runtime.tensors import (
    InferRequest,
    InferResponse,
    ModelMetadata,
    RequestedOutput,
    Tensor,
    TensorSpec,
)
from sluice_runtime.transport import check_parameters


def decode_infer_request(body: Buffer, header_length: str | None, fallback_id: str) -> InferRequest:
    """Parses an inference request body; `fallback_id` is used when the body has no `id`."""
    view = memoryview(body)
    if header_length is None:
        header, binary = view, view[len(view) :]
    else:
        length = _header_length(header_length, len(view))
        header, binary = view[:length], view[length:]
    doc = loads(header)
    if not isinstance(doc, dict):
        raise InvalidInput("request body must be a JSON object")
    inputs, used = _decode_inputs(doc.get("inputs"), binary)
    if used != len(binary):
        raise InvalidInput(
            f"binary data has {len(binary) - used} bytes after the inputs' binary_data_size total"
        )
    request_id = doc.get("id")
    return InferRequest(
        id=request_id if isinstance(request_id, str) and request_id else fallback_id,
        inputs=inputs,
        outputs=_decode_outputs(doc.get("outputs")),
        parameters=_parameters(doc.get("parameters"), "request"),
    )


def _header_length(value: str, body_size: int) -> int:
    try:
        length = int(value)
    except ValueError:
        length = -1
    if not 0 <= length <= body_size:
        raise InvalidInput(
            f"Inference-Header-Content-Length must be an integer between 0 and the body size "
            f"{body_size}, got {value!r}"
        )
    return length


def _decode_inputs(items: Any, binary: memoryview) -> tuple[list[Tensor], int]:
    if not isinstance(items, list):
        raise InvalidInput("request 'inputs' must be a list of tensors")
    tensors: list[Tensor] = []
    offset = 0
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidInput(f"inputs[{index}] must be a JSON object")
        name = item.get("name")
        datatype = item.get("datatype")
        if not isinstance(name, str) or not isinstance(datatype, str):
            raise InvalidInput(f"inputs[{index}] needs a string 'name' and 'datatype'")
        shape = check_shape(name, item.get("shape"))
        parameters = _parameters(item.get("parameters"), f"input '{name}'")
        size = parameters.get("binary_data_size")
        if size is not None:
            if type(size) is not int or size < 0 or offset + size > len(binary):
                raise InvalidInput(
                    f"input '{name}': binary_data_size {size!r} does not fit the "
                    f"{len(binary) - offset} binary bytes left"
                )
            data = array_from_raw(name, datatype, shape, binary[offset : offset + size])
            offset += size
        elif "data" in item:
            data = array_from_values(name, datatype, shape, item["data"])
        else:
            raise InvalidInput(f"input '{name}': has neither 'data' nor binary_data_size")
        tensors.append(Tensor(name, datatype, shape, data, parameters))
    return tensors, offset


def _decode_outputs(items: Any) -> list[RequestedOutput] | None:
    if items is None:
        return None
    if not isinstance(items, list):
        raise InvalidInput("request 'outputs' must be a list")
    outputs: list[RequestedOutput] = []
    for index, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise InvalidInput(f"outputs[{index}] needs a string 'name'")
        outputs.append(
            RequestedOutput(name, _parameters(item.get("parameters"), f"output '{name}'"))
        )
    return outputs


def _parameters(value: Any, owner: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{owner}: 'parameters' must be a JSON object")
    return check_parameters(value, owner)


def encode_infer_response(
    response: InferResponse, request: InferRequest
) -> tuple[bytes, int | None]:
    """The response body and, when any output is binary, the length of its JSON header."""
    default_binary = bool(request.parameters.get("binary_data_output", False))
    wanted = (
        {
            output.name: output.parameters.get("binary_data", default_binary)
            for output in request.outputs
        }
        if request.outputs
        else {}
    )
    outputs: list[dict[str, Any]] = []
    buffers: list[Buffer] = []
    for tensor in response.outputs:
        entry: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": list(tensor.shape),
        }
        if wanted.get(tensor.name, default_binary):
            raw = raw_from_array(tensor.datatype, tensor.data)
            entry["parameters"] = {"binary_data_size": len(raw)}
            buffers.append(raw)
        elif tensor.datatype == "BYTES":
            entry["data"] = text_list(tensor.data)
        else:
            entry["data"] = tensor.data.reshape(-1)
        outputs.append(entry)
    doc: dict[str, Any] = {
        "model_name": response.model_name,
        "model_version": response.model_version,
        "id": response.id,
        "outputs": outputs,
    }
    if response.parameters:
        doc["parameters"] = response.parameters
    header = dumps(doc)
    if not buffers:
        return header, None
    return b"".join([header, *buffers]), len(header)


def model_metadata_doc(metadata: ModelMetadata) -> dict[str, Any]:
    """The V2 model metadata object; `properties` (as in OIP's gRPC message) adds device, digest."""
    return {
        "name": metadata.name,
        "versions": [metadata.version],
        "platform": metadata.platform,
        "inputs": [_tensor_doc(spec) for spec in metadata.inputs],
        "outputs": [_tensor_doc(spec) for spec in metadata.outputs],
        "properties": {"device": metadata.device, "digest": metadata.digest},
    }


def _tensor_doc(spec: TensorSpec) -> dict[str, Any]:
    return {"name": spec.name, "datatype": spec.datatype, "shape": list(spec.shape)}
