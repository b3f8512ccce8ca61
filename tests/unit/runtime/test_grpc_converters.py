"""Protobuf <-> InferRequest/InferResponse: raw and typed contents, every datatype, errors."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest
from sluice_runtime.errors import InvalidInput
from sluice_runtime.grpc import converters
from sluice_runtime.grpc.generated import inference_pb2 as pb
from sluice_runtime.tensors import InferResponse, ModelMetadata, RequestedOutput, Tensor, TensorSpec
from tritonclient.grpc import service_pb2

from tests.unit.runtime.wire_samples import SAMPLES, raw

# How a client fills typed contents for each datatype (widened, as the protocol says).
TYPED = {
    datatype: (field, [item for item in SAMPLES[datatype].reshape(-1).tolist()])
    for datatype, field in converters.CONTENTS_FIELD.items()
}


def request_with(tensor: Any) -> Any:
    message = pb.ModelInferRequest(model_name="m")
    message.inputs.append(tensor)
    return message


@pytest.mark.parametrize("datatype", sorted(SAMPLES))
def test_raw_input_of_every_datatype_decodes(datatype: str) -> None:
    message = pb.ModelInferRequest(model_name="m", id="r1")
    message.inputs.add(name="x", datatype=datatype, shape=[2, 3])
    message.raw_input_contents.append(raw(datatype, SAMPLES[datatype]))
    request = converters.infer_request_from_proto(message, "fallback")
    assert request.id == "r1"
    np.testing.assert_array_equal(request.inputs[0].data, SAMPLES[datatype])
    assert request.inputs[0].data.dtype == SAMPLES[datatype].dtype


@pytest.mark.parametrize("datatype", sorted(TYPED))
def test_typed_contents_of_every_datatype_decode(datatype: str) -> None:
    field, values = TYPED[datatype]
    tensor = pb.ModelInferRequest.InferInputTensor(name="x", datatype=datatype, shape=[2, 3])
    getattr(tensor.contents, field).extend(values)
    request = converters.infer_request_from_proto(request_with(tensor), "fallback")
    assert request.id == "fallback"
    assert request.outputs is None
    np.testing.assert_array_equal(request.inputs[0].data, SAMPLES[datatype])
    assert request.inputs[0].data.dtype == SAMPLES[datatype].dtype


def fp16_typed(m: Any) -> None:
    m.inputs.add(name="x", datatype="FP16", shape=[1])


def int8_out_of_range(m: Any) -> None:
    m.inputs.add(name="x", datatype="INT8", shape=[1]).contents.int_contents.append(300)


def too_few_values(m: Any) -> None:
    m.inputs.add(name="x", datatype="FP32", shape=[3]).contents.fp32_contents.append(1.0)


def raw_for_some_inputs(m: Any) -> None:
    m.inputs.add(name="x", datatype="FP32", shape=[1])
    m.inputs.add(name="y", datatype="FP32", shape=[1])
    m.raw_input_contents.append(b"\0" * 4)


def raw_and_typed(m: Any) -> None:
    m.inputs.add(name="x", datatype="FP32", shape=[1]).contents.fp32_contents.append(1.0)
    m.raw_input_contents.append(b"\0" * 4)


def raw_too_short(m: Any) -> None:
    m.inputs.add(name="x", datatype="FP32", shape=[2])
    m.raw_input_contents.append(b"\0" * 4)


def negative_dimension(m: Any) -> None:
    m.inputs.add(name="x", datatype="FP32", shape=[-1])
    m.raw_input_contents.append(b"")


def unknown_datatype(m: Any) -> None:
    m.inputs.add(name="x", datatype="COMPLEX", shape=[1])


def classification(m: Any) -> None:
    m.outputs.add(name="y").parameters["classification"].int64_param = 3


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (fp16_typed, "input 'x': FP16 has no typed contents field; send it in raw_input_contents"),
        (int8_out_of_range, "input 'x': data is not a rectangular list of INT8 values"),
        (too_few_values, "input 'x': data has 1 elements but shape [3] needs 3"),
        (raw_for_some_inputs, "raw_input_contents has 1 entries but the request has 2 inputs"),
        (raw_and_typed, "input 'x': has both raw and typed contents"),
        (raw_too_short, "input 'x': raw data has 4 bytes but shape [2] of FP32 needs 8"),
        (negative_dimension, "input 'x': shape must be a list of non-negative integers, got [-1]"),
        (unknown_datatype, "input 'x': unknown datatype 'COMPLEX'"),
        (classification, "output 'y': the classification extension is not supported"),
    ],
)
def test_malformed_requests_are_refused_naming_the_input(build: Any, message: str) -> None:
    request = pb.ModelInferRequest(model_name="m")
    build(request)
    with pytest.raises(InvalidInput) as caught:
        converters.infer_request_from_proto(request, "id")
    assert caught.value.message.startswith(message)


def test_parameters_and_requested_outputs_come_through() -> None:
    message = pb.ModelInferRequest(model_name="m")
    message.parameters["priority"].int64_param = 3
    message.parameters["tag"].string_param = "t"
    message.parameters["big"].uint64_param = 2**64 - 1
    message.outputs.add(name="y").parameters["flag"].bool_param = True
    message.outputs.add(name="z").parameters["scale"].double_param = 0.5
    request = converters.infer_request_from_proto(message, "id")
    assert request.parameters == {"priority": 3, "tag": "t", "big": 2**64 - 1}
    assert request.outputs == [
        RequestedOutput("y", {"flag": True}),
        RequestedOutput("z", {"scale": 0.5}),
    ]


def test_response_carries_every_output_raw_in_order() -> None:
    tensors = [
        Tensor(name, datatype, SAMPLES[datatype].shape, SAMPLES[datatype])
        for name, datatype in (("a", "FP16"), ("b", "BYTES"), ("c", "UINT64"))
    ]
    response = InferResponse("m", "4", "r7", tensors, parameters={"sequence": 2})
    message = converters.infer_response_to_proto(response)
    assert (message.model_name, message.model_version, message.id) == ("m", "4", "r7")
    assert [(o.name, o.datatype, list(o.shape)) for o in message.outputs] == [
        ("a", "FP16", [2, 3]),
        ("b", "BYTES", [2, 3]),
        ("c", "UINT64", [2, 3]),
    ]
    assert list(message.raw_output_contents) == [
        raw("FP16", SAMPLES["FP16"]),
        raw("BYTES", SAMPLES["BYTES"]),
        raw("UINT64", SAMPLES["UINT64"]),
    ]
    assert message.parameters["sequence"].int64_param == 2
    # What tritonclient parses: its own message class reads our bytes field for field.
    theirs = service_pb2.ModelInferResponse.FromString(message.SerializeToString())
    assert theirs.raw_output_contents[1][:5] == struct.pack("<I", 1) + b"a"


def test_an_output_laid_out_column_major_still_travels_row_major() -> None:
    transposed = SAMPLES["FP32"].T  # a view: Fortran order, not C order
    assert not transposed.flags.c_contiguous
    response = InferResponse("m", "1", "r", [Tensor("y", "FP32", transposed.shape, transposed)])
    message = converters.infer_response_to_proto(response)
    assert message.raw_output_contents[0] == raw("FP32", np.ascontiguousarray(transposed))
    assert len(message.parameters) == 0


def test_metadata_config_and_server_metadata_messages() -> None:
    metadata = ModelMetadata(
        name="m",
        version="2",
        platform="onnxruntime_onnx",
        inputs=(TensorSpec("x", "FP32", (-1, 4)),),
        outputs=(TensorSpec("y", "BYTES", (-1,)),),
        max_batch_size=8,
        device="cuda",
        digest="sha256:" + "b" * 64,
    )
    message = converters.model_metadata_to_proto(metadata)
    assert (message.name, list(message.versions), message.platform) == (
        "m",
        ["2"],
        "onnxruntime_onnx",
    )
    assert [(t.name, t.datatype, list(t.shape)) for t in message.inputs] == [("x", "FP32", [-1, 4])]
    assert dict(message.properties) == {"device": "cuda", "digest": "sha256:" + "b" * 64}

    config = converters.model_config_to_proto(
        {
            "name": "m",
            "platform": "onnxruntime_onnx",
            "backend": "onnxruntime",
            "max_batch_size": 8,
            "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": [4]}],
            "output": [{"name": "y", "data_type": "TYPE_STRING", "dims": [1]}],
            "dynamic_batching": {"max_queue_delay_microseconds": 2000},
            "instance_group": [{"count": 1}],
        }
    ).config
    assert (config.name, config.max_batch_size, config.backend) == ("m", 8, "onnxruntime")
    assert config.input[0].data_type == pb.TYPE_FP32
    assert list(config.input[0].dims) == [4]
    assert config.output[0].data_type == pb.TYPE_STRING
    assert config.dynamic_batching.max_queue_delay_microseconds == 2000

    server = converters.server_metadata_to_proto(
        {"name": "sluice", "version": "0.1.0", "extensions": ["binary_tensor_data"]}
    )
    assert (server.name, server.version, list(server.extensions)) == (
        "sluice",
        "0.1.0",
        ["binary_tensor_data"],
    )
