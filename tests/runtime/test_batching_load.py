"""Dynamic batching and load shedding, observed from outside a real runtime."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from tests.models import mlp, slow
from tests.runtime.harness import RuntimeProcess, StartRuntime

Array = np.ndarray[Any, Any]


def _infer(client: httpx.Client, runtime: RuntimeProcess, name: str, x: Array) -> httpx.Response:
    tensor = {"name": name, "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}
    return client.post(f"{runtime.http_url}/v2/models/model/infer", json={"inputs": [tensor]})


def _array(answer: httpx.Response) -> Array:
    output = answer.json()["outputs"][0]
    return np.array(output["data"], dtype=np.float32).reshape(output["shape"])


def test_concurrent_requests_are_merged_and_each_answer_is_its_own(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    model = mlp(tmp_path / "mlp.onnx")
    # A generous delay makes merging certain on a busy 2-core machine.
    runtime = start_runtime(model, max_batch_size=32, max_batch_delay_us=50_000)
    rng = np.random.default_rng(3)
    inputs = [rng.standard_normal((1 + i % 3, 64)).astype(np.float32) for i in range(48)]
    limits = httpx.Limits(max_connections=len(inputs))
    with httpx.Client(timeout=60, limits=limits) as client, ThreadPoolExecutor(len(inputs)) as pool:
        answers = list(pool.map(lambda x: _infer(client, runtime, "input", x), inputs))
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    for x, answer in zip(inputs, answers, strict=True):
        assert answer.status_code == 200, answer.text
        expected = session.run(None, {"input": x})[0]
        np.testing.assert_allclose(_array(answer), expected, rtol=1e-5, atol=1e-5)
    runs = runtime.metric("sluice_batch_size_count")
    requests = runtime.metric("sluice_batch_size_sum")
    assert requests == len(inputs)
    assert runs < requests  # some runs served more than one request
    assert runtime.metric("sluice_batch_size_bucket", le="1.0") < runs


def test_a_full_queue_answers_429_and_resource_exhausted_at_once(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    # A long batching delay keeps the first two requests queued while the rest arrive,
    # however slowly: exactly two are answered and every other one is refused at once.
    runtime = start_runtime(
        slow(tmp_path / "slow.onnx"),
        max_batch_size=64,
        max_batch_delay_us=3_000_000,
        max_queue_size=2,
    )
    inputs = [np.full((1, 4), i, dtype=np.float32) for i in range(8)]
    limits = httpx.Limits(max_connections=len(inputs))
    with httpx.Client(timeout=60, limits=limits) as client, ThreadPoolExecutor(len(inputs)) as pool:
        answers = list(pool.map(lambda x: _infer(client, runtime, "x", x), inputs))
    codes = [answer.status_code for answer in answers]
    assert sorted(codes) == [200] * 2 + [429] * 6, codes
    for x, answer in zip(inputs, answers, strict=True):
        if answer.status_code == 429:
            assert "queue is full" in answer.json()["error"]
        else:
            np.testing.assert_array_equal(_array(answer), x)  # the slow model answers x

    def grpc_infer(x: Array) -> tuple[str, str]:
        with grpcclient.InferenceServerClient(runtime.grpc_address) as client:
            tensor = grpcclient.InferInput("x", [1, 4], "FP32")
            tensor.set_data_from_numpy(x)
            try:
                client.infer("model", [tensor], client_timeout=60)
            except InferenceServerException as error:
                return str(error.status()), str(error.message())
            return "OK", ""

    with ThreadPoolExecutor(len(inputs)) as pool:
        outcomes = list(pool.map(grpc_infer, inputs))
    statuses = sorted(status for status, _ in outcomes)
    assert statuses == ["OK"] * 2 + ["StatusCode.RESOURCE_EXHAUSTED"] * 6, outcomes
    for status, message in outcomes:
        assert status == "OK" or "queue is full" in message
    assert runtime.metric("sluice_requests_total", code="429") == 6
    assert runtime.metric("sluice_requests_total", code="RESOURCE_EXHAUSTED") == 6
