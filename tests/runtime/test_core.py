"""The core behind real transports: metadata, config, device, versions, answers vs ONNX Runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from tests.models import fixed_batch, multi_io
from tests.runtime.harness import StartRuntime

Array = np.ndarray[Any, Any]


def test_a_fixed_batch_model_is_served_without_batching(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    model = fixed_batch(tmp_path / "fixed.onnx")
    runtime = start_runtime(model, model_name="fixed", max_batch_size=8)
    config = httpx.get(f"{runtime.http_url}/v2/models/fixed/config").json()
    assert config["max_batch_size"] == 0
    assert config["input"] == [{"name": "x", "data_type": "TYPE_FP32", "dims": [2, 3]}]

    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    with httpclient.InferenceServerClient(runtime.http_url.removeprefix("http://")) as client:
        tensor = httpclient.InferInput("x", [2, 3], "FP32")
        tensor.set_data_from_numpy(x)
        result = client.infer("fixed", [tensor])
    np.testing.assert_array_equal(result.as_numpy("y"), 2 * x + 1)

    wrong = {"inputs": [{"name": "x", "shape": [3, 3], "datatype": "FP32", "data": [0.0] * 9}]}
    answer = httpx.post(f"{runtime.http_url}/v2/models/fixed/infer", json=wrong)
    assert answer.status_code == 400
    assert answer.json() == {"error": "input 'x': expected shape [2, 3], got [3, 3]"}


def test_metadata_says_the_model_runs_on_cpu(tmp_path: Path, start_runtime: StartRuntime) -> None:
    runtime = start_runtime(fixed_batch(tmp_path / "fixed.onnx"), device="auto")
    metadata = httpx.get(f"{runtime.http_url}/v2/models/model").json()
    assert metadata["properties"]["device"] == "cpu"
    assert metadata["platform"] == "onnxruntime_onnx"
    assert "on cpu (providers CPUExecutionProvider)" in runtime.logs()


def test_several_inputs_and_outputs_match_onnxruntime_over_both_protocols(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    model = multi_io(tmp_path / "multi.onnx")
    runtime = start_runtime(model, model_name="multi", model_version="4", max_batch_size=8)
    rng = np.random.default_rng(7)
    feed: dict[str, Array] = {
        "x": rng.standard_normal((3, 4)).astype(np.float32),
        "offset": rng.integers(-3, 3, (3, 4)).astype(np.int64),
        "scale": rng.standard_normal((3, 1)).astype(np.float16),
    }
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    expected = dict(zip(names, session.run(None, feed), strict=True))
    datatypes = {"x": "FP32", "offset": "INT64", "scale": "FP16"}

    with httpclient.InferenceServerClient(runtime.http_url.removeprefix("http://")) as client:
        tensors = []
        for name, value in feed.items():
            tensor = httpclient.InferInput(name, list(value.shape), datatypes[name])
            tensor.set_data_from_numpy(value)
            tensors.append(tensor)
        result = client.infer("multi", tensors, model_version="4")
    for name in names:
        np.testing.assert_array_equal(result.as_numpy(name), expected[name])

    with grpcclient.InferenceServerClient(runtime.grpc_address) as client:
        tensors = []
        for name, value in feed.items():
            tensor = grpcclient.InferInput(name, list(value.shape), datatypes[name])
            tensor.set_data_from_numpy(value)
            tensors.append(tensor)
        outputs = [grpcclient.InferRequestedOutput("count"), grpcclient.InferRequestedOutput("sum")]
        result = client.infer("multi", tensors, outputs=outputs)
    assert [output.name for output in result.get_response().outputs] == ["count", "sum"]
    np.testing.assert_array_equal(result.as_numpy("count"), expected["count"])
    np.testing.assert_array_equal(result.as_numpy("sum"), expected["sum"])


def test_only_the_served_version_answers(tmp_path: Path, start_runtime: StartRuntime) -> None:
    runtime = start_runtime(fixed_batch(tmp_path / "fixed.onnx"), model_version="3")
    base = f"{runtime.http_url}/v2/models/model"
    assert httpx.get(f"{base}/versions/3/ready").status_code == 200
    assert httpx.get(f"{base}/ready").status_code == 200
    other = httpx.get(f"{base}/versions/2")
    assert other.status_code == 404
    assert "version '2' is not served here" in other.json()["error"]
    assert httpx.get(f"{runtime.http_url}/v2/models/other").status_code == 404
