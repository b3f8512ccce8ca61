"""V1 `:predict` bodies: instances (rows) and inputs (columns), typed by model metadata."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from sluice_runtime.errors import InvalidInput
from sluice_runtime.rest.v1_codec import decode_predict, encode_predict
from sluice_runtime.tensors import InferResponse, ModelMetadata, Tensor, TensorSpec


def metadata(*inputs: TensorSpec) -> ModelMetadata:
    return ModelMetadata(
        name="m",
        version="1",
        platform="onnxruntime_onnx",
        inputs=inputs,
        outputs=(TensorSpec("y", "FP32", (-1, 2)),),
        max_batch_size=8,
        device="cpu",
        digest="sha256:" + "0" * 64,
    )


SINGLE = metadata(TensorSpec("x", "FP32", (-1, 3)))
MULTI = metadata(TensorSpec("x", "FP64", (-1, 2)), TensorSpec("tag", "BYTES", (-1,)))


def decode(doc: Any, meta: ModelMetadata = SINGLE) -> tuple[dict[str, Tensor], str]:
    request, style = decode_predict(orjson.dumps(doc), meta, "rid")
    assert request.id == "rid"
    assert request.outputs is None
    return {tensor.name: tensor for tensor in request.inputs}, style


def test_instances_of_a_single_input_model_are_its_rows() -> None:
    tensors, style = decode({"instances": [[1, 2, 3], [4, 5, 6]]})
    assert style == "instances"
    x = tensors["x"]
    assert (x.datatype, x.shape, x.data.dtype) == ("FP32", (2, 3), np.float32)
    np.testing.assert_array_equal(x.data, [[1, 2, 3], [4, 5, 6]])


def test_instances_of_a_multi_input_model_are_objects_by_input_name() -> None:
    tensors, _ = decode(
        {"instances": [{"x": [1, 2], "tag": "a"}, {"x": [3, 4], "tag": "é"}]}, MULTI
    )
    np.testing.assert_array_equal(tensors["x"].data, np.array([[1, 2], [3, 4]], dtype=np.float64))
    assert tensors["tag"].shape == (2,)
    assert tensors["tag"].data.tolist() == [b"a", "é".encode()]


def test_inputs_are_columns_by_name_or_a_bare_value_for_one_input() -> None:
    tensors, style = decode({"inputs": {"x": [[1, 2], [3, 4]], "tag": ["p", "q"]}}, MULTI)
    assert style == "inputs"
    assert tensors["x"].shape == (2, 2)
    assert tensors["tag"].data.tolist() == [b"p", b"q"]
    tensors, _ = decode({"inputs": [[0.5, 1, 2]]})
    assert tensors["x"].shape == (1, 3)


@pytest.mark.parametrize(
    ("doc", "meta", "message"),
    [
        ([1], SINGLE, "a V1 predict body is a JSON object with 'instances' or 'inputs'"),
        ({"instances": [], "inputs": []}, SINGLE, "a V1 predict body is a JSON object with"),
        ({"instances": []}, SINGLE, "'instances' must be a non-empty list"),
        ({"instances": [[1, 2]]}, MULTI, "instances[0] must be an object keyed by input name"),
        ({"instances": [{"z": 1}]}, MULTI, "instances[0] has unknown input 'z'"),
        ({"inputs": [1, 2]}, MULTI, "'inputs' must be an object keyed by input name (x, tag)"),
        ({"inputs": {"q": [1]}}, MULTI, "'inputs' has unknown input 'q'"),
        ({"instances": [[1, 2, 3], [4, 5]]}, SINGLE, "input 'x': data is not a rectangular"),
        ({"instances": [["a", "b", "c"]]}, SINGLE, "input 'x': data is not a rectangular list"),
    ],
)
def test_malformed_bodies_say_what_is_wrong(doc: Any, meta: ModelMetadata, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode(doc, meta)
    assert caught.value.message.startswith(message)


def response(*tensors: Tensor) -> InferResponse:
    return InferResponse(model_name="m", model_version="1", id="rid", outputs=list(tensors))


def test_predictions_of_one_output_are_its_rows() -> None:
    y = np.array([[0.5, 1.5], [2.5, 3.5]], dtype=np.float32)
    body = encode_predict(response(Tensor("y", "FP32", (2, 2), y)), "instances")
    assert orjson.loads(body) == {"predictions": [[0.5, 1.5], [2.5, 3.5]]}


def test_predictions_of_several_outputs_are_objects_per_row() -> None:
    label = np.array([3, 1], dtype=np.int64)
    text = np.array([b"cat", b"dog"], dtype=object)
    body = encode_predict(
        response(Tensor("label", "INT64", (2,), label), Tensor("name", "BYTES", (2,), text)),
        "instances",
    )
    assert orjson.loads(body) == {
        "predictions": [{"label": 3, "name": "cat"}, {"label": 1, "name": "dog"}]
    }


def test_outputs_answer_columns_in_the_style_of_the_request() -> None:
    label = np.array([3, 1], dtype=np.int64)
    score = np.array([[0.25], [0.75]], dtype=np.float64)
    both = response(Tensor("label", "INT64", (2,), label), Tensor("score", "FP64", (2, 1), score))
    assert orjson.loads(encode_predict(both, "inputs")) == {
        "outputs": {"label": [3, 1], "score": [[0.25], [0.75]]}
    }
    one = response(Tensor("label", "INT64", (2,), label))
    assert orjson.loads(encode_predict(one, "inputs")) == {"outputs": [3, 1]}


def test_outputs_without_a_shared_first_dimension_cannot_be_rows() -> None:
    both = response(
        Tensor("a", "FP32", (2,), np.zeros(2, dtype=np.float32)),
        Tensor("b", "FP32", (3,), np.zeros(3, dtype=np.float32)),
    )
    with pytest.raises(InvalidInput, match="send 'inputs' instead of 'instances'"):
        encode_predict(both, "instances")
