"""V2 REST bodies: JSON tensors and the binary tensor data extension, both directions."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pytest
from sluice_runtime.errors import InvalidInput
from sluice_runtime.rest.v2_codec import (
    decode_infer_request,
    encode_infer_response,
    model_metadata_doc,
)
from sluice_runtime.tensors import (
    InferRequest,
    InferResponse,
    ModelMetadata,
    RequestedOutput,
    Tensor,
    TensorSpec,
)

from tests.unit.runtime.wire_samples import SAMPLES, raw


def binary_body(doc: dict[str, Any], *blobs: bytes) -> tuple[bytes, str]:
    header = orjson.dumps(doc)
    return header + b"".join(blobs), str(len(header))


@pytest.mark.parametrize("datatype", sorted(SAMPLES))
def test_binary_input_of_every_datatype_decodes_to_its_values(datatype: str) -> None:
    array = SAMPLES[datatype]
    blob = raw(datatype, array)
    body, length = binary_body(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": datatype,
                    "shape": [2, 3],
                    "parameters": {"binary_data_size": len(blob)},
                }
            ]
        },
        blob,
    )
    request = decode_infer_request(body, length, "fallback")
    (tensor,) = request.inputs
    assert (tensor.name, tensor.datatype, tensor.shape) == ("x", datatype, (2, 3))
    assert tensor.data.shape == (2, 3)
    np.testing.assert_array_equal(tensor.data, array)
    assert request.id == "fallback"


@pytest.mark.parametrize("datatype", sorted(SAMPLES))
def test_json_input_of_every_datatype_decodes_flat_and_nested(datatype: str) -> None:
    array = SAMPLES[datatype]
    values = (
        [item.decode() for item in array.reshape(-1)]
        if datatype == "BYTES"
        else array.reshape(-1).tolist()
    )
    nested = [values[:3], values[3:]]
    for data in (values, nested):
        body = orjson.dumps(
            {
                "id": "r1",
                "inputs": [{"name": "x", "datatype": datatype, "shape": [2, 3], "data": data}],
            }
        )
        request = decode_infer_request(body, None, "fallback")
        assert request.id == "r1"
        np.testing.assert_array_equal(request.inputs[0].data, array)
        assert request.inputs[0].data.dtype == array.dtype


def test_binary_and_json_inputs_mix_in_one_request() -> None:
    ints = np.arange(4, dtype=np.int64)
    body, length = binary_body(
        {
            "inputs": [
                {"name": "a", "datatype": "FP32", "shape": [2], "data": [1.5, 2.5]},
                {
                    "name": "b",
                    "datatype": "INT64",
                    "shape": [4],
                    "parameters": {"binary_data_size": 32},
                },
                {
                    "name": "c",
                    "datatype": "BYTES",
                    "shape": [1],
                    "parameters": {"binary_data_size": 6},
                },
            ],
            "outputs": [{"name": "y", "parameters": {"binary_data": True}}],
            "parameters": {"binary_data_output": False},
        },
        ints.tobytes(),
        struct.pack("<I", 2) + b"hi",
    )
    request = decode_infer_request(body, length, "id")
    a, b, c = request.inputs
    np.testing.assert_array_equal(a.data, [1.5, 2.5])
    np.testing.assert_array_equal(b.data, ints)
    assert c.data.tolist() == [b"hi"]
    assert request.outputs == [RequestedOutput("y", {"binary_data": True})]
    assert request.parameters == {"binary_data_output": False}


def test_binary_input_is_a_view_of_the_body_not_a_copy() -> None:
    blob = np.arange(6, dtype=np.float32).tobytes()
    body, length = binary_body(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": "FP32",
                    "shape": [6],
                    "parameters": {"binary_data_size": 24},
                }
            ]
        },
        blob,
    )
    data = decode_infer_request(body, length, "id").inputs[0].data
    assert not data.flags.owndata
    assert not data.flags.writeable


def one_binary_input(datatype: str, shape: list[int], size: int) -> dict[str, Any]:
    parameters = {"binary_data_size": size}
    return {
        "inputs": [{"name": "x", "datatype": datatype, "shape": shape, "parameters": parameters}]
    }


@pytest.mark.parametrize(
    ("doc", "blob", "message"),
    [
        (
            one_binary_input("FP32", [3], 8),
            b"\0" * 8,
            "input 'x': raw data has 8 bytes but shape [3] of FP32 needs 12",
        ),
        (
            one_binary_input("FP32", [2], 16),
            b"\0" * 8,
            "input 'x': binary_data_size 16 does not fit the 8 binary bytes left",
        ),
        (
            one_binary_input("FP32", [2], 8),
            b"\0" * 12,
            "binary data has 4 bytes after the inputs' binary_data_size total",
        ),
        (
            one_binary_input("BYTES", [2], 7),
            struct.pack("<I", 3) + b"abc",
            "input 'x': raw BYTES data ends after 1 of 2 elements",
        ),
        (
            one_binary_input("BYTES", [1], 6),
            struct.pack("<I", 9) + b"ab",
            "input 'x': raw BYTES element 0 declares 9 bytes but only 2 remain",
        ),
        (
            one_binary_input("BYTES", [1], 8),
            struct.pack("<I", 2) + b"abcd",
            "input 'x': raw BYTES data has 2 bytes after its 1 elements",
        ),
        (
            one_binary_input("FP8", [1], 1),
            b"\0",
            "input 'x': unknown datatype 'FP8'; expected one of BOOL, BYTES, FP16, FP32, FP64, "
            "INT16, INT32, INT64, INT8, UINT16, UINT32, UINT64, UINT8",
        ),
    ],
)
def test_binary_mistakes_are_refused_naming_the_input(
    doc: dict[str, Any], blob: bytes, message: str
) -> None:
    body, length = binary_body(doc, blob)
    with pytest.raises(InvalidInput) as caught:
        decode_infer_request(body, length, "id")
    assert caught.value.message == message


def json_input(**fields: Any) -> bytes:
    return orjson.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [2], **fields}]})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "request body is not valid JSON"),
        (b"[1, 2]", "request body must be a JSON object"),
        (b"{}", "request 'inputs' must be a list of tensors"),
        (b'{"inputs": [1]}', "inputs[0] must be a JSON object"),
        (b'{"inputs": [{"name": "x"}]}', "inputs[0] needs a string 'name' and 'datatype'"),
        (json_input(), "input 'x': has neither 'data' nor binary_data_size"),
        (json_input(data=[1.0, 2.0, 3.0]), "input 'x': data has 3 elements but shape [2] needs 2"),
        (json_input(data=["a", "b"]), "input 'x': data is not a rectangular list of FP32 values"),
        (json_input(data=[[1.0], [2.0, 3.0]]), "input 'x': data is not a rectangular list"),
        (json_input(shape=[-1], data=[1.0]), "input 'x': shape must be a list of non-negative"),
        (json_input(shape="2", data=[1.0]), "input 'x': shape must be a list of non-negative"),
        (
            json_input(data=[1.0, 2.0], parameters={"shared_memory_region": "r"}),
            "input 'x': the shared memory extension is not supported",
        ),
        (
            orjson.dumps(
                {"inputs": [], "outputs": [{"name": "y", "parameters": {"classification": 3}}]}
            ),
            "output 'y': the classification extension is not supported",
        ),
        (orjson.dumps({"inputs": [], "outputs": [{}]}), "outputs[0] needs a string 'name'"),
        (
            orjson.dumps({"inputs": [], "parameters": []}),
            "request: 'parameters' must be a JSON object",
        ),
        (
            orjson.dumps(
                {"inputs": [{"name": "s", "datatype": "BYTES", "shape": [1], "data": [1]}]}
            ),
            "input 's': BYTES data must be a rectangular list of strings, found int",
        ),
    ],
)
def test_json_mistakes_are_refused_with_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_infer_request(body, None, "id")
    assert caught.value.message.startswith(message)


@pytest.mark.parametrize("length", ["-1", "abc", "1000"])
def test_header_length_must_fit_the_body(length: str) -> None:
    with pytest.raises(InvalidInput, match="Inference-Header-Content-Length must be an integer"):
        decode_infer_request(b'{"inputs": []}', length, "id")


def response_of(*tensors: Tensor) -> InferResponse:
    return InferResponse(model_name="m", model_version="7", id="r9", outputs=list(tensors))


def split(body: bytes, length: int | None) -> tuple[dict[str, Any], bytes]:
    if length is None:
        return orjson.loads(body), b""
    return orjson.loads(body[:length]), body[length:]


@pytest.mark.parametrize("datatype", sorted(SAMPLES))
def test_binary_output_of_every_datatype_is_raw_after_the_header(datatype: str) -> None:
    array = SAMPLES[datatype]
    tensor = Tensor("y", datatype, array.shape, array)
    request = InferRequest(id="r9", inputs=[], parameters={"binary_data_output": True})
    body, length = encode_infer_response(response_of(tensor), request)
    doc, blob = split(body, length)
    assert blob == raw(datatype, array)
    assert doc == {
        "model_name": "m",
        "model_version": "7",
        "id": "r9",
        "outputs": [
            {
                "name": "y",
                "datatype": datatype,
                "shape": [2, 3],
                "parameters": {"binary_data_size": len(blob)},
            }
        ],
    }


@pytest.mark.parametrize("datatype", sorted(SAMPLES))
def test_json_output_of_every_datatype_is_flat_data(datatype: str) -> None:
    array = SAMPLES[datatype]
    body, length = encode_infer_response(
        response_of(Tensor("y", datatype, array.shape, array)), InferRequest(id="r9", inputs=[])
    )
    assert length is None
    (output,) = orjson.loads(body)["outputs"]
    expected = (
        [item.decode() for item in array.reshape(-1)]
        if datatype == "BYTES"
        else array.reshape(-1).tolist()
    )
    assert output["shape"] == [2, 3]
    if datatype.startswith("FP"):
        np.testing.assert_array_equal(
            np.array(output["data"], dtype=array.dtype).reshape(2, 3), array
        )
    else:
        assert output["data"] == expected


def test_each_output_is_binary_or_json_as_requested() -> None:
    a = np.array([1.0, 2.0], dtype=np.float32)
    b = np.array([3, 4], dtype=np.int32)
    c = np.array([[5.0], [6.0]], dtype=np.float64).T  # not C-contiguous
    request = InferRequest(
        id="r9",
        inputs=[],
        outputs=[
            RequestedOutput("a", {"binary_data": True}),
            RequestedOutput("b", {"binary_data": False}),
            RequestedOutput("c"),
        ],
        parameters={"binary_data_output": True},
    )
    response = response_of(
        Tensor("a", "FP32", (2,), a), Tensor("b", "INT32", (2,), b), Tensor("c", "FP64", (1, 2), c)
    )
    doc, blob = split(*encode_infer_response(response, request))
    first, second, third = doc["outputs"]
    assert first["parameters"] == {"binary_data_size": 8}
    assert second["data"] == [3, 4]
    assert "parameters" not in second
    assert third["parameters"] == {"binary_data_size": 16}
    assert blob == a.tobytes() + np.ascontiguousarray(c).tobytes()


def test_json_bytes_output_that_is_not_text_asks_for_binary() -> None:
    tensor = Tensor("y", "BYTES", (1,), np.array([b"\xff\xfe"], dtype=object))
    with pytest.raises(InvalidInput, match=r"not UTF-8 text .* binary_data"):
        encode_infer_response(response_of(tensor), InferRequest(id="r", inputs=[]))


def test_model_metadata_document_lists_tensors_and_where_it_runs() -> None:
    metadata = ModelMetadata(
        name="m",
        version="3",
        platform="onnxruntime_onnx",
        inputs=(TensorSpec("x", "FP32", (-1, 4)),),
        outputs=(TensorSpec("y", "INT64", (-1,)),),
        max_batch_size=8,
        device="cpu",
        digest="sha256:" + "a" * 64,
    )
    assert model_metadata_doc(metadata) == {
        "name": "m",
        "versions": ["3"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "y", "datatype": "INT64", "shape": [-1]}],
        "properties": {"device": "cpu", "digest": "sha256:" + "a" * 64},
    }
