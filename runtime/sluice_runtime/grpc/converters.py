"""Protobuf messages <-> transport-neutral types, as pure functions.

Requests may carry tensors in `raw_input_contents` (what tritonclient and perf_analyzer
send) or in typed `contents`; responses always use `raw_output_contents`, which every
Triton-compatible client reads and which costs no per-element conversion.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format

from sluice_runtime.errors import InvalidInput
from sluice_runtime.grpc.generated import inference_pb2 as pb
from sluice_runtime.tensorcodec import (
    array_from_raw,
    array_from_values,
    check_shape,
    dtype_for,
    raw_bytes,
)
from sluice_runtime.tensors import (
    InferRequest,
    InferResponse,
    ModelMetadata,
    Parameters,
    RequestedOutput,
    Tensor,
    TensorSpec,
)
from sluice_runtime.transport import check_parameters

# Which InferTensorContents field carries each datatype; narrow integers travel widened.
# FP16 has none: the protocol only allows it as raw bytes.
CONTENTS_FIELD: dict[str, str] = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def infer_request_from_proto(message: Any, fallback_id: str) -> InferRequest:
    """A ModelInferRequest as an InferRequest; `fallback_id` when the message has no id."""
    raw = message.raw_input_contents
    items = message.inputs
    if raw and len(raw) != len(items):
        raise InvalidInput(
            f"raw_input_contents has {len(raw)} entries but the request has "
            f"{len(items)} inputs; send one per input, in order, or none"
        )
    inputs: list[Tensor] = []
    for index, item in enumerate(items):
        name, datatype = item.name, item.datatype
        shape = check_shape(name, item.shape[:])  # a slice: half the cost of list()
        if raw:
            if item.HasField("contents"):
                raise InvalidInput(f"input '{name}': has both raw and typed contents")
            data = array_from_raw(name, datatype, shape, raw[index])
        else:
            data = _from_contents(name, datatype, shape, item.contents)
        parameters = _checked(item.parameters, "input", name)
        inputs.append(Tensor(name, datatype, shape, data, parameters))
    requested = message.outputs
    outputs = (
        [
            RequestedOutput(output.name, _checked(output.parameters, "output", output.name))
            for output in requested
        ]
        if requested
        else None
    )
    parameters = _checked(message.parameters, "request", "")
    return InferRequest(message.id or fallback_id, inputs, outputs, parameters)


def _checked(parameters: Mapping[str, Any], kind: str, name: str) -> Parameters:
    # Most requests carry no parameters: skip the conversion and the owner's name then.
    if not parameters:
        return {}
    owner = f"{kind} '{name}'" if name else kind
    return check_parameters(parameters_from_proto(parameters), owner)


def _from_contents(name: str, datatype: str, shape: tuple[int, ...], contents: Any) -> Any:
    dtype_for(name, datatype)
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        raise InvalidInput(
            f"input '{name}': {datatype} has no typed contents field; send it in raw_input_contents"
        )
    return array_from_values(name, datatype, shape, list(getattr(contents, field)))


def parameters_from_proto(parameters: Mapping[str, Any]) -> Parameters:
    """A protobuf parameter map as plain Python values."""
    out: Parameters = {}
    for key, parameter in parameters.items():
        choice = parameter.WhichOneof("parameter_choice")
        if choice is not None:
            out[key] = getattr(parameter, choice)
    return out


def parameters_to_proto(parameters: Parameters, target: Any) -> None:
    """Fills a protobuf parameter map from plain values (bool, int, float, str)."""
    for key, value in parameters.items():
        entry = target[key]
        if isinstance(value, bool):
            entry.bool_param = value
        elif isinstance(value, int):
            if value > 2**63 - 1:
                entry.uint64_param = value
            else:
                entry.int64_param = value
        elif isinstance(value, float):
            entry.double_param = value
        else:
            entry.string_param = str(value)


def infer_response_to_proto(response: InferResponse) -> Any:
    """A ModelInferResponse with every output in raw_output_contents."""
    message = pb.ModelInferResponse(
        model_name=response.model_name, model_version=response.model_version, id=response.id
    )
    if response.parameters:  # seldom any: the map is not even touched then
        parameters_to_proto(response.parameters, message.parameters)
    for tensor in response.outputs:
        message.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        message.raw_output_contents.append(raw_bytes(tensor.datatype, tensor.data))
    return message


def model_metadata_to_proto(metadata: ModelMetadata) -> Any:
    """ModelMetadataResponse; `properties` (an OIP field Triton lacks) says device and digest."""
    return pb.ModelMetadataResponse(
        name=metadata.name,
        versions=[metadata.version],
        platform=metadata.platform,
        inputs=[_tensor_metadata(spec) for spec in metadata.inputs],
        outputs=[_tensor_metadata(spec) for spec in metadata.outputs],
        properties={"device": metadata.device, "digest": metadata.digest},
    )


def _tensor_metadata(spec: TensorSpec) -> Any:
    return pb.ModelMetadataResponse.TensorMetadata(
        name=spec.name, datatype=spec.datatype, shape=spec.shape
    )


def server_metadata_to_proto(doc: Mapping[str, Any]) -> Any:
    """ServerMetadataResponse from the data plane's server metadata."""
    return pb.ServerMetadataResponse(
        name=doc["name"], version=doc["version"], extensions=doc.get("extensions", ())
    )


def model_config_to_proto(config: Mapping[str, Any]) -> Any:
    """ModelConfigResponse from Triton's JSON config; fields our proto lacks are dropped."""
    message = pb.ModelConfigResponse()
    json_format.ParseDict(config, message.config, ignore_unknown_fields=True)
    return message
