"""Requests are checked against model metadata; every message names input, expected, got."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from sluice_runtime.errors import InvalidInput
from sluice_runtime.tensors import InferRequest, ModelMetadata, RequestedOutput, Tensor, TensorSpec
from sluice_runtime.validation import validate

BATCHED = ModelMetadata(
    name="m",
    version="1",
    platform="onnxruntime_onnx",
    inputs=(TensorSpec("x", "FP32", (-1, 4)), TensorSpec("ids", "INT64", (-1, 2))),
    outputs=(TensorSpec("y", "FP32", (-1, 1)), TensorSpec("label", "BYTES", (-1,))),
    max_batch_size=8,
    device="cpu",
    digest="sha256:" + "0" * 64,
)
FIXED = ModelMetadata(
    name="f",
    version="1",
    platform="onnxruntime_onnx",
    inputs=(TensorSpec("text", "BYTES", (2,)), TensorSpec("n", "INT32", (2, -1))),
    outputs=(TensorSpec("out", "FP32", (2,)),),
    max_batch_size=0,
    device="cpu",
    digest="sha256:" + "0" * 64,
)


def tensor(name: str, datatype: str, shape: tuple[int, ...], data: Any = None) -> Tensor:
    if data is None:
        dtype = {"FP32": np.float32, "INT64": np.int64, "INT32": np.int32}[datatype]
        data = np.zeros(shape, dtype=dtype)
    return Tensor(name, datatype, shape, np.asarray(data))


def good_inputs(rows: int = 3) -> list[Tensor]:
    return [tensor("x", "FP32", (rows, 4)), tensor("ids", "INT64", (rows, 2))]


def request(inputs: list[Tensor], outputs: list[str] | None = None) -> InferRequest:
    wanted = None if outputs is None else [RequestedOutput(name) for name in outputs]
    return InferRequest(id="r", inputs=inputs, outputs=wanted)


def test_a_good_request_gives_model_ready_inputs_in_model_order() -> None:
    valid = validate(BATCHED, request(list(reversed(good_inputs(3)))))
    assert list(valid.inputs) == ["x", "ids"]
    assert valid.rows == 3
    assert valid.output_names == ("y", "label")


def test_flat_data_is_reshaped_to_the_declared_shape() -> None:
    flat = Tensor("x", "FP32", (2, 4), np.arange(8, dtype=np.float32))
    valid = validate(BATCHED, request([flat, tensor("ids", "INT64", (2, 2))]))
    assert valid.inputs["x"].shape == (2, 4)
    assert valid.inputs["x"][1, 0] == 4.0


def test_requested_outputs_keep_the_clients_order() -> None:
    valid = validate(BATCHED, request(good_inputs(), ["label", "y"]))
    assert valid.output_names == ("label", "y")


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            [tensor("x", "FP32", (1, 4))],
            "missing input 'ids': expected INT64 [-1, 2]",
        ),
        (
            [*good_inputs(), tensor("z", "FP32", (1, 4))],
            "unexpected input 'z'; the model takes 'x', 'ids'",
        ),
        (
            [tensor("x", "INT64", (3, 4)), tensor("ids", "INT64", (3, 2))],
            "input 'x': expected datatype FP32, got INT64",
        ),
        (
            [tensor("x", "FP32", (3, 5)), tensor("ids", "INT64", (3, 2))],
            "input 'x': expected shape [-1, 4], got [3, 5]",
        ),
        (
            [tensor("x", "FP32", (3,)), tensor("ids", "INT64", (3, 2))],
            "input 'x': expected shape [-1, 4], got [3]",
        ),
        (
            [
                Tensor("x", "FP32", (3, 4), np.zeros(11, dtype=np.float32)),
                tensor("ids", "INT64", (3, 2)),
            ],
            "input 'x': shape [3, 4] holds 12 elements, got 11",
        ),
        (
            [tensor("x", "FP32", (3, 4)), tensor("ids", "INT64", (2, 2))],
            "inputs disagree on the batch dimension: 'x' has 3, 'ids' has 2",
        ),
        (
            [*good_inputs(), tensor("x", "FP32", (1, 4))],
            "input 'x' is given more than once",
        ),
        (
            [Tensor("x", "FP32", (-1, 4), np.zeros(0, np.float32)), tensor("ids", "INT64", (0, 2))],
            "input 'x': shape [-1, 4] has a negative dimension",
        ),
    ],
)
def test_bad_inputs_are_refused_with_a_precise_message(inputs: list[Tensor], message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)) as caught:
        validate(BATCHED, request(inputs))
    assert caught.value.http_status == 400
    assert caught.value.grpc_code == "INVALID_ARGUMENT"


def test_unknown_and_repeated_outputs_are_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown output 'score'; the model has 'y', 'label'"):
        validate(BATCHED, request(good_inputs(), ["score"]))
    with pytest.raises(InvalidInput, match="requested more than once"):
        validate(BATCHED, request(good_inputs(), ["y", "y"]))


def test_a_model_without_batching_counts_one_row_and_allows_other_dynamic_dims() -> None:
    text = Tensor("text", "BYTES", (2,), np.array([b"caf\xc3\xa9", "plain"], dtype=object))
    valid = validate(FIXED, request([text, tensor("n", "INT32", (2, 7))]))
    assert valid.rows == 1
    assert valid.inputs["text"].tolist() == ["café", "plain"]
    with pytest.raises(InvalidInput, match=r"input 'n': expected shape \[2, -1\], got \[3, 7\]"):
        validate(FIXED, request([text, tensor("n", "INT32", (3, 7))]))


def test_bytes_that_are_not_utf8_are_refused_before_the_model() -> None:
    text = Tensor("text", "BYTES", (2,), np.array([b"ok", b"\xff\xfe"], dtype=object))
    with pytest.raises(InvalidInput, match="input 'text': element 1 is not UTF-8 text"):
        validate(FIXED, request([text, tensor("n", "INT32", (2, 1))]))


def test_data_in_a_wider_dtype_is_given_to_the_model_in_the_declared_one() -> None:
    wide = Tensor("x", "FP32", (1, 4), np.ones((1, 4), dtype=np.float64))
    valid = validate(BATCHED, request([wide, tensor("ids", "INT64", (1, 2))]))
    assert valid.inputs["x"].dtype == np.float32
