"""Start-up and shutdown of a real runtime process: digest, load failure, warm-up, SIGTERM."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import tritonclient.grpc as grpcclient
from sluice_runtime.digest import sha256_file

from tests.models import broken, fixed_batch, mlp, slow
from tests.runtime.harness import RuntimeProcess, StartRuntime

Array = np.ndarray[Any, Any]


def test_a_digest_mismatch_exits_non_zero_naming_both_digests(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    model = mlp(tmp_path / "mlp.onnx")
    pinned = "sha256:" + "0" * 64
    runtime = start_runtime(model, digest=pinned, wait_ready=False)
    code = runtime.wait_exit()
    logs = runtime.logs()
    assert code != 0
    assert f"expected {pinned}" in logs
    assert f"got {sha256_file(model)}" in logs
    assert "refusing to serve" in logs
    assert "ready:" not in logs


def test_the_pinned_digest_is_verified_and_reported(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    model = mlp(tmp_path / "mlp.onnx")
    digest = sha256_file(model)
    runtime = start_runtime(model, digest=digest)
    metadata = httpx.get(f"{runtime.http_url}/v2/models/model").json()
    assert metadata["properties"]["digest"] == digest


def test_a_model_that_cannot_load_exits_non_zero_with_the_reason(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    runtime = start_runtime(broken(tmp_path / "broken.onnx"), wait_ready=False)
    assert runtime.wait_exit() != 0
    logs = runtime.logs()
    assert "model load failed" in logs
    assert "onnxruntime cannot load" in logs


def test_a_missing_model_exits_non_zero_with_the_reason(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    runtime = start_runtime(tmp_path / "nowhere" / "model.onnx", wait_ready=False)
    assert runtime.wait_exit() != 0
    assert "does not exist" in runtime.logs()


def test_live_at_once_ready_only_after_warm_up(tmp_path: Path, start_runtime: StartRuntime) -> None:
    # A slow model warmed many times gives a long window between live and ready.
    runtime = start_runtime(
        slow(tmp_path / "slow.onnx"), max_batch_size=4, warmup_requests=4, wait_ready=False
    )
    seen_warming = False
    with httpx.Client(timeout=5.0) as client:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert runtime.process.poll() is None, runtime.logs()
            try:
                live = client.get(f"{runtime.http_url}/v2/health/live").status_code
                ready = client.get(f"{runtime.http_url}/v2/health/ready").status_code
            except httpx.TransportError:
                time.sleep(0.02)
                continue
            assert live == 200
            if ready == 200:
                break
            assert ready == 503
            if not seen_warming:
                seen_warming = True
                body = {"inputs": [_json_tensor("x", np.zeros((1, 4), np.float32))]}
                early = client.post(f"{runtime.http_url}/v2/models/model/infer", json=body)
                assert early.status_code == 503
                assert "error" in early.json()
                with grpcclient.InferenceServerClient(runtime.grpc_address) as grpc:
                    assert grpc.is_server_live()
                    assert not grpc.is_server_ready()
            time.sleep(0.02)
        else:
            raise AssertionError("never ready:\n" + runtime.logs())
    assert seen_warming, "readiness must not come before the warm-up"
    # By the time it answers ready, the warm-up has run: 4 rounds at batch sizes 1 and 4.
    assert runtime.metric("sluice_model_warmup_seconds") > 0
    assert runtime.metric("sluice_model_load_seconds") > 0
    assert "warm-up: 8 runs at batch sizes [1, 4]" in runtime.logs()
    with grpcclient.InferenceServerClient(runtime.grpc_address) as grpc:
        assert grpc.is_server_ready()


def test_sigterm_under_load_completes_in_flight_requests_and_exits_zero(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    # A long batching delay holds every request in flight until SIGTERM has been sent,
    # however slowly a busy machine delivers them; then they run as one batch of the
    # slow model while the listeners drain.
    runtime = start_runtime(
        slow(tmp_path / "slow.onnx"), max_batch_size=64, max_batch_delay_us=5_000_000
    )
    inputs = [np.full((1, 4), i, dtype=np.float32) for i in range(8)]
    with ThreadPoolExecutor(len(inputs)) as pool:
        futures = [
            pool.submit(_infer_rest if i % 2 else _infer_grpc, runtime, x)
            for i, x in enumerate(inputs)
        ]
        runtime.wait_metric("sluice_requests_in_flight", len(inputs))
        runtime.process.send_signal(signal.SIGTERM)
        answers = [future.result(timeout=120) for future in futures]
    assert runtime.wait_exit() == 0
    for x, answer in zip(inputs, answers, strict=True):
        np.testing.assert_array_equal(answer, x)  # the slow model answers its input
    assert "received SIGTERM" in runtime.logs()


def test_sigterm_when_idle_exits_zero(tmp_path: Path, start_runtime: StartRuntime) -> None:
    runtime = start_runtime(fixed_batch(tmp_path / "fixed.onnx"))
    assert runtime.stop(signal.SIGTERM) == 0
    assert runtime.stop(signal.SIGINT) == 0  # already gone: the code stays


def _json_tensor(name: str, array: Array) -> dict[str, object]:
    return {
        "name": name,
        "shape": list(array.shape),
        "datatype": "FP32",
        "data": array.reshape(-1).tolist(),
    }


def _infer_rest(runtime: RuntimeProcess, x: Array) -> Array:
    body = {"inputs": [_json_tensor("x", x)]}
    answer = httpx.post(f"{runtime.http_url}/v2/models/model/infer", json=body, timeout=120)
    assert answer.status_code == 200, answer.text
    output = answer.json()["outputs"][0]
    return np.array(output["data"], dtype=np.float32).reshape(output["shape"])


def _infer_grpc(runtime: RuntimeProcess, x: Array) -> Array:
    with grpcclient.InferenceServerClient(runtime.grpc_address) as client:
        tensor = grpcclient.InferInput("x", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        result = client.infer("model", [tensor], client_timeout=120)
        output: Array | None = result.as_numpy("y")
        assert output is not None
        return output
