"""The peer benchmark's wire bodies: each form carries the bench input, each answer decodes."""

from __future__ import annotations

import json

import numpy as np
from sluice_runtime.grpc.generated import inference_pb2 as pb

from bench.peers_bodies import (
    bench_input,
    binary_answer,
    decode_binary_answer,
    decode_grpc_answer,
    decode_json_answer,
    grpc_answer,
    json_answer,
    request_bodies,
)

X = bench_input(64)
Y = np.arange(10, dtype=np.float32).reshape(1, 10) / 7


def test_bench_input_is_seeded_fp32_batch_one() -> None:
    assert X.shape == (1, 64)
    assert X.dtype == np.float32
    np.testing.assert_array_equal(X, bench_input(64))
    assert not np.array_equal(X, bench_input(64, seed=1))


def test_json_request_carries_the_input() -> None:
    doc = json.loads(request_bodies("mlp", "input", X).rest_json)
    tensor = doc["inputs"][0]
    assert (tensor["name"], tensor["datatype"], tensor["shape"]) == ("input", "FP32", [1, 64])
    np.testing.assert_array_equal(np.asarray(tensor["data"], dtype=np.float32), X.reshape(-1))


def test_binary_request_is_header_then_raw_little_endian_floats() -> None:
    bodies = request_bodies("mlp", "input", X)
    header = json.loads(bodies.rest_binary[: bodies.binary_header_length])
    raw = bodies.rest_binary[bodies.binary_header_length :]
    assert header["inputs"][0]["parameters"] == {"binary_data_size": 256}
    assert header["parameters"] == {"binary_data_output": True}
    np.testing.assert_array_equal(np.frombuffer(raw, dtype="<f4").reshape(1, 64), X)


def test_grpc_request_uses_raw_input_contents() -> None:
    request = pb.ModelInferRequest.FromString(request_bodies("mlp", "input", X).grpc)
    assert request.model_name == "mlp"
    assert (request.inputs[0].name, list(request.inputs[0].shape)) == ("input", [1, 64])
    np.testing.assert_array_equal(
        np.frombuffer(request.raw_input_contents[0], dtype="<f4").reshape(1, 64), X
    )


def test_answers_decode_back_to_the_output() -> None:
    np.testing.assert_array_equal(decode_json_answer(json_answer("mlp", "output", Y)), Y)
    body, length = binary_answer("mlp", "output", Y)
    np.testing.assert_array_equal(decode_binary_answer(body, length), Y)
    np.testing.assert_array_equal(decode_grpc_answer(grpc_answer("mlp", "output", Y)), Y)


def test_binary_decoder_reads_json_answers_and_typed_grpc_contents() -> None:
    np.testing.assert_array_equal(decode_binary_answer(json_answer("m", "o", Y), None), Y)
    header = json.dumps({"outputs": [{"shape": [1, 10], "data": Y.reshape(-1).tolist()}]})
    np.testing.assert_allclose(decode_binary_answer(header.encode(), len(header)), Y)
    response = pb.ModelInferResponse()
    output = response.outputs.add(name="o", datatype="FP32", shape=[1, 10])
    output.contents.fp32_contents.extend(Y.reshape(-1).tolist())
    np.testing.assert_allclose(decode_grpc_answer(response.SerializeToString()), Y)
