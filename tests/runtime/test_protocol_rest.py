"""REST wire compatibility: unmodified tritonclient.http and plain HTTP against a real runtime.

Answers are compared with ONNX Runtime's own on the same inputs, computed here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.models import ONNX_TYPES, identity_all_types, mlp, multi_io
from tests.runtime.harness import RuntimeProcess, StartRuntime
from tests.runtime.protocol_data import all_types_feed, reference

Array = np.ndarray[Any, Any]


def client(runtime: RuntimeProcess) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(runtime.http_url.removeprefix("http://"))


def infer_input(name: str, value: Array, datatype: str, binary: bool) -> httpclient.InferInput:
    tensor = httpclient.InferInput(name, list(value.shape), datatype)
    tensor.set_data_from_numpy(value, binary_data=binary)
    return tensor


@pytest.fixture
def mlp_model(tmp_path: Path) -> Path:
    return mlp(tmp_path / "mlp.onnx", inputs=8, hidden=16, outputs=3)


def test_server_and_model_metadata_over_http(mlp_model: Path, start_runtime: StartRuntime) -> None:
    runtime = start_runtime(mlp_model, model_name="mlp", model_version="5", max_batch_size=4)
    with client(runtime) as http:
        assert http.is_server_live()
        assert http.is_server_ready()
        assert http.is_model_ready("mlp")
        assert http.is_model_ready("mlp", "5")
        assert not http.is_model_ready("mlp", "6")
        server = http.get_server_metadata()
        assert server["name"] == "sluice"
        assert "binary_tensor_data" in server["extensions"]
        for version in ("", "5"):
            metadata = http.get_model_metadata("mlp", version)
            assert metadata["name"] == "mlp"
            assert metadata["versions"] == ["5"]
            assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 8]}]
            assert metadata["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 3]}]
            config = http.get_model_config("mlp", version)
            assert config["max_batch_size"] == 4
            assert config["input"] == [{"name": "input", "data_type": "TYPE_FP32", "dims": [8]}]


def test_binary_and_json_tensors_on_both_paths_equal_onnxruntime(
    mlp_model: Path, start_runtime: StartRuntime
) -> None:
    runtime = start_runtime(mlp_model, model_name="mlp", model_version="5", max_batch_size=4)
    x = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    expected = reference(mlp_model, {"input": x})["output"]
    with client(runtime) as http:
        for binary_in in (True, False):
            for binary_out in (True, False):
                for version in ("", "5"):
                    result = http.infer(
                        "mlp",
                        [infer_input("input", x, "FP32", binary_in)],
                        model_version=version,
                        outputs=[httpclient.InferRequestedOutput("output", binary_data=binary_out)],
                        request_id=f"r-{binary_in}-{binary_out}-{version}",
                    )
                    response = result.get_response()
                    assert response["id"] == f"r-{binary_in}-{binary_out}-{version}"
                    assert response["model_version"] == "5"
                    assert ("parameters" in response["outputs"][0]) is binary_out
                    np.testing.assert_allclose(result.as_numpy("output"), expected, rtol=1e-6)
        # No outputs named: tritonclient asks for every output in binary.
        result = http.infer("mlp", [infer_input("input", x, "FP32", True)])
        np.testing.assert_allclose(result.as_numpy("output"), expected, rtol=1e-6)


def test_several_datatypes_and_a_chosen_subset_of_outputs(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    model = multi_io(tmp_path / "multi.onnx")
    runtime = start_runtime(model, model_name="multi", max_batch_size=8)
    rng = np.random.default_rng(3)
    feed = {
        "x": rng.standard_normal((2, 4)).astype(np.float32),
        "offset": rng.integers(-5, 5, (2, 4)).astype(np.int64),
        "scale": rng.standard_normal((2, 1)).astype(np.float16),
    }
    datatypes = {"x": "FP32", "offset": "INT64", "scale": "FP16"}
    expected = reference(model, feed)
    with client(runtime) as http:
        for binary in (True, False):
            inputs = [infer_input(n, v, datatypes[n], binary) for n, v in feed.items()]
            outputs = [
                httpclient.InferRequestedOutput(name, binary_data=binary)
                for name in ("positive", "argmax", "sum")
            ]
            result = http.infer("multi", inputs, outputs=outputs)
            assert [o["name"] for o in result.get_response()["outputs"]] == [
                "positive",
                "argmax",
                "sum",
            ]
            assert [o["datatype"] for o in result.get_response()["outputs"]] == [
                "BOOL",
                "INT64",
                "FP64",
            ]
            for name in ("positive", "argmax", "sum"):
                np.testing.assert_array_equal(result.as_numpy(name), expected[name])


def test_every_datatype_round_trips_in_binary_and_json(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    model = identity_all_types(tmp_path / "types.onnx")
    runtime = start_runtime(model, model_name="types", max_batch_size=4)
    feed = all_types_feed()
    with client(runtime) as http:
        for binary in (True, False):
            inputs = [
                infer_input(name, value, name.removeprefix("in_"), binary)
                for name, value in feed.items()
            ]
            outputs = [
                httpclient.InferRequestedOutput(f"out_{t}", binary_data=binary) for t in ONNX_TYPES
            ]
            result = http.infer("types", inputs, outputs=outputs)
            for datatype in ONNX_TYPES:
                got = result.as_numpy(f"out_{datatype}")
                sent = feed[f"in_{datatype}"]
                if datatype == "BYTES":  # tritonclient gives bytes from binary, str from JSON
                    text = [x.decode() if binary else x for x in got.reshape(-1)]
                    assert text == list(sent.reshape(-1))
                else:
                    assert got.dtype == sent.dtype, datatype
                    np.testing.assert_array_equal(got, sent)


def test_v1_predict_with_instances_and_inputs(mlp_model: Path, start_runtime: StartRuntime) -> None:
    runtime = start_runtime(mlp_model, model_name="mlp", max_batch_size=4)
    x = np.random.default_rng(2).standard_normal((2, 8)).astype(np.float32)
    expected = reference(mlp_model, {"input": x})["output"]
    base = f"{runtime.http_url}/v1/models/mlp"
    assert httpx.get(base).json() == {"name": "mlp", "ready": True}
    rows = httpx.post(f"{base}:predict", json={"instances": x.tolist()}).json()["predictions"]
    np.testing.assert_allclose(np.array(rows, dtype=np.float32), expected, rtol=1e-6)
    columns = httpx.post(f"{base}:predict", json={"inputs": {"input": x.tolist()}}).json()
    np.testing.assert_allclose(np.array(columns["outputs"], dtype=np.float32), expected, rtol=1e-6)
    wrong = httpx.post(f"{base}:predict", json={"instances": [[1.0, 2.0]]})
    assert wrong.status_code == 400
    assert wrong.json() == {"error": "input 'input': expected shape [-1, 8], got [1, 2]"}
    assert httpx.post(f"{runtime.http_url}/v1/models/nope:predict", json={}).status_code == 404


def json_tensor(name: str, value: Array, datatype: str = "FP32") -> dict[str, Any]:
    return {
        "name": name,
        "datatype": datatype,
        "shape": list(value.shape),
        "data": value.ravel().tolist(),
    }


def test_every_error_is_an_error_object_with_its_status(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    model = multi_io(tmp_path / "multi.onnx")
    runtime = start_runtime(model, model_name="multi", max_batch_size=8, max_request_bytes=65536)
    x = np.zeros((1, 4), np.float32)
    offset = np.zeros((1, 4), np.int64)
    scale = np.ones((1, 1), np.float16)
    good = [
        json_tensor("x", x),
        json_tensor("offset", offset, "INT64"),
        json_tensor("scale", scale, "FP16"),
    ]
    cases: list[tuple[str, list[dict[str, Any]], int, str]] = [
        ("/v2/models/other/infer", good, 404, "model 'other' is not served here"),
        ("/v2/models/multi/versions/2/infer", good, 404, "version '2' is not served here"),
        (
            "/v2/models/multi/infer",
            [*good[:2], json_tensor("scales", scale, "FP16")],
            400,
            "'scales'",
        ),
        (
            "/v2/models/multi/infer",
            [json_tensor("x", x, "FP64"), *good[1:]],
            400,
            "input 'x': expected datatype FP32, got FP64",
        ),
        (
            "/v2/models/multi/infer",
            [json_tensor("x", np.zeros((1, 5), np.float32)), *good[1:]],
            400,
            "input 'x': expected shape [-1, 4], got [1, 5]",
        ),
        ("/v2/models/multi/infer", good[:2], 400, "'scale'"),
    ]
    with httpx.Client(base_url=runtime.http_url) as http:
        for path, inputs, status, fragment in cases:
            answer = http.post(path, json={"inputs": inputs})
            assert answer.status_code == status, (path, answer.text)
            (message,) = answer.json().values()
            assert list(answer.json()) == ["error"]
            assert fragment in message, (fragment, message)
        too_big = http.post("/v2/models/multi/infer", content=b" " * 70000)
        assert too_big.status_code == 413
        assert too_big.json() == {"error": "request body of 70000 bytes exceeds the limit of 65536"}
        for method, path, status in [("GET", "/v3", 404), ("PUT", "/v2/models/multi/infer", 405)]:
            answer = http.request(method, path)
            assert answer.status_code == status
            assert list(answer.json()) == ["error"]
        malformed = http.post("/v2/models/multi/infer", content=b'{"inputs": [{"name": 3}]}')
        assert malformed.status_code == 400
        assert list(malformed.json()) == ["error"]

    with client(runtime) as triton:
        big = np.zeros((1, 4), np.float32)
        inputs = [
            infer_input("x", big, "FP32", True),
            infer_input("offset", offset, "INT64", True),
            infer_input("wrong", scale, "FP16", True),
        ]
        with pytest.raises(InferenceServerException) as caught:
            triton.infer("multi", inputs)
        assert caught.value.status() == "400"
        assert "'wrong'" in caught.value.message()
        with pytest.raises(InferenceServerException) as caught:
            triton.infer("other", inputs)
        assert caught.value.status() == "404"
        huge = np.zeros((5000, 4), np.float32)  # 80 kB of binary tensor data
        inputs = [
            infer_input("x", huge, "FP32", True),
            infer_input("offset", np.zeros((5000, 4), np.int64), "INT64", True),
            infer_input("scale", np.ones((5000, 1), np.float16), "FP16", True),
        ]
        with pytest.raises(InferenceServerException) as caught:
            triton.infer("multi", inputs)
        assert caught.value.status() == "413"
        assert "exceeds the limit of 65536" in caught.value.message()


def test_request_ids_are_echoed_generated_and_logged(
    mlp_model: Path, start_runtime: StartRuntime
) -> None:
    runtime = start_runtime(mlp_model, model_name="mlp", max_batch_size=4)
    body = {"inputs": [json_tensor("input", np.zeros((1, 8), np.float32))]}
    with httpx.Client(base_url=runtime.http_url) as http:
        answer = http.post("/v2/models/mlp/infer", json=body, headers={"X-Request-ID": "trace-1"})
        assert answer.headers["x-request-id"] == "trace-1"
        assert answer.json()["id"] == "trace-1"
        answer = http.post("/v2/models/mlp/infer", json={**body, "id": "body-2"})
        assert answer.headers["x-request-id"] == "body-2"
        assert answer.json()["id"] == "body-2"
        answer = http.post("/v2/models/mlp/infer", json=body)
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"])
        assert answer.json()["id"] == answer.headers["x-request-id"]
        failed = http.post(
            "/v2/models/mlp/infer",
            json={"inputs": [json_tensor("input", np.zeros((1, 2), np.float32))]},
            headers={"X-Request-ID": "trace-bad-3"},
        )
        assert failed.status_code == 400
        assert failed.headers["x-request-id"] == "trace-bad-3"
    assert re.search(r"rest request trace-bad-3: 400 .*input 'input'", runtime.logs())


def test_answers_carry_a_date_but_no_server_banner(
    mlp_model: Path, start_runtime: StartRuntime
) -> None:
    runtime = start_runtime(mlp_model, model_name="mlp")
    body = {"inputs": [json_tensor("input", np.zeros((1, 8), np.float32))]}
    with httpx.Client(base_url=runtime.http_url) as http:
        for answer in (http.post("/v2/models/mlp/infer", json=body), http.get("/v2/health/ready")):
            assert answer.status_code == 200
            assert "server" not in answer.headers
            assert "date" in answer.headers
