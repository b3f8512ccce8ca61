"""`--workers N`: worker processes behind one pair of ports, started, scraped and stopped as
one runtime. Real processes and sockets: the supervisor forks real workers, and /metrics,
which any worker may answer, must count every request exactly once.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import numpy as np
import tritonclient.grpc as grpcclient

from tests.models import mlp
from tests.runtime.harness import RuntimeProcess, StartRuntime

REQUESTS = 200


def _tmpdir(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "tmp").mkdir()
    return {"TMPDIR": str(tmp_path / "tmp")}


def _workers(runtime: RuntimeProcess) -> list[int]:
    pid = runtime.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):  # reaped before or while we read
        return False
    return state != "Z"


def _wait_all_ready(runtime: RuntimeProcess, workers: int) -> None:
    # A worker's warm-up time is set just before it turns ready, in the same loop turn.
    for worker in range(workers):
        runtime.wait_metric("sluice_model_warmup_seconds", 1e-9, worker=str(worker))


def test_workers_share_the_ports_and_metrics_count_each_request_once(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    runtime = start_runtime(mlp(tmp_path / "mlp.onnx"), workers=2, env=_tmpdir(tmp_path))
    assert len(_workers(runtime)) == 2
    _wait_all_ready(runtime, 2)
    x = np.random.default_rng(0).standard_normal((1, 64)).astype(np.float32)
    body = {
        "inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": x[0].tolist()}]
    }
    answers = []
    for _ in range(REQUESTS):  # a fresh connection each time: any worker may take it
        reply = httpx.post(f"{runtime.http_url}/v2/models/model/infer", json=body, timeout=10.0)
        assert reply.status_code == 200, reply.text
        answers.append(np.asarray(reply.json()["outputs"][0]["data"], dtype=np.float32))
    assert all(np.array_equal(a, answers[0]) for a in answers)  # every worker, one model
    with grpcclient.InferenceServerClient(runtime.grpc_address) as client:
        tensor = grpcclient.InferInput("input", [1, 64], "FP32")
        tensor.set_data_from_numpy(x)
        got = client.infer("model", [tensor]).as_numpy("output")
    assert got is not None
    np.testing.assert_array_equal(got[0], answers[0])
    for _ in range(5):  # whichever worker answers the scrape reports all of them
        rest = {
            worker: runtime.metric(
                "sluice_requests_total", protocol="rest", code="200", worker=worker
            )
            for worker in ("0", "1")
        }
        assert sum(rest.values()) == REQUESTS
        assert all(count > 0 for count in rest.values()), rest
        assert runtime.metric("sluice_requests_total", protocol="grpc", code="OK") == 1


def test_sigterm_drains_every_worker_and_the_supervisor_exits_zero(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    runtime = start_runtime(mlp(tmp_path / "mlp.onnx"), workers=3, env=_tmpdir(tmp_path))
    workers = _workers(runtime)
    assert len(workers) == 3
    _wait_all_ready(runtime, 3)
    assert len(list((tmp_path / "tmp").glob("sluice-workers-*/worker-*.sock"))) == 3
    assert runtime.stop(signal.SIGTERM) == 0
    assert not any(_alive(pid) for pid in workers)
    assert not list((tmp_path / "tmp").glob("sluice-workers-*"))  # their metrics folder
    assert runtime.logs().count("sluice_runtime.server: stopped") == 3


def test_a_worker_that_dies_stops_the_others_and_the_supervisor_fails(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    # Kubernetes then restarts the container: no pod keeps serving with a worker missing.
    runtime = start_runtime(mlp(tmp_path / "mlp.onnx"), workers=2)
    first, second = _workers(runtime)
    os.kill(first, signal.SIGKILL)
    assert runtime.wait_exit() == 1
    assert not _alive(second)
    assert "exited by itself" in runtime.logs()
