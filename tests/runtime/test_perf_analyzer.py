"""perf_analyzer (Triton's load generator, unmodified) against a real runtime, both protocols.

The binary comes from hack/deps.d/20-perf-analyzer.sh (`make system-deps`). Each run is a
few one-second windows at a small concurrency; perf_analyzer stops with a non-zero exit on
the first failed request, and the runtime's own counters must show no failure either.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.models import identity_all_types, mlp
from tests.runtime.harness import RuntimeProcess, StartRuntime

HOME = Path.home() / ".cache/sluice/perf_analyzer/2.45.0"
BINARY = HOME / "perf_analyzer"


def perf_analyzer(
    runtime: RuntimeProcess, protocol: str, concurrency: int, csv_path: Path, *extra: str
) -> tuple[dict[str, str], int]:
    """Runs one measurement; returns perf_analyzer's CSV row and its measured request count."""
    assert BINARY.exists(), f"{BINARY} is missing: run `make system-deps`"
    url = runtime.grpc_address if protocol == "grpc" else runtime.http_url.removeprefix("http://")
    library_path = ":".join(filter(None, [str(HOME / "lib"), os.environ.get("LD_LIBRARY_PATH")]))
    argv = [
        str(BINARY),
        "-m",
        runtime.model_name,
        "-i",
        protocol,
        "-u",
        url,
        "--concurrency-range",
        str(concurrency),
        "--measurement-interval",
        "1000",
        "--max-trials",
        "3",
        "--stability-percentage",
        "1000",  # compatibility, not performance: any three windows will do
        "-f",
        str(csv_path),
        *extra,
    ]
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "LD_LIBRARY_PATH": library_path},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"perf_analyzer failed:\n{output}\n{runtime.logs()}"
    assert "error" not in output.lower(), output
    (row,) = list(csv.DictReader(csv_path.open()))
    count = re.search(r"Request count: (\d+)", output)
    assert count is not None, output
    return row, int(count.group(1))


def assert_all_answered(runtime: RuntimeProcess, protocol: str, measured: int) -> None:
    ok = "200" if protocol == "rest" else "OK"
    answered = runtime.metric("sluice_requests_total", protocol=protocol, code=ok)
    total = runtime.metric("sluice_requests_total", protocol=protocol)
    assert answered == total, runtime.metrics()
    assert answered >= measured


@pytest.mark.parametrize("tensor_format", ["binary", "json"])
def test_perf_analyzer_over_http(
    tmp_path: Path, start_runtime: StartRuntime, tensor_format: str
) -> None:
    runtime = start_runtime(mlp(tmp_path / "mlp.onnx"), model_name="mlp", max_batch_size=8)
    row, measured = perf_analyzer(
        runtime,
        "http",
        2,
        tmp_path / "http.csv",
        f"--input-tensor-format={tensor_format}",
        f"--output-tensor-format={tensor_format}",
    )
    assert row["Concurrency"] == "2"
    assert float(row["Inferences/Second"]) > 0
    assert measured > 0
    assert_all_answered(runtime, "rest", measured)


def test_perf_analyzer_over_grpc_and_http_with_every_datatype(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    # Random data for thirteen inputs, BYTES among them, in perf_analyzer's own encodings.
    model = identity_all_types(tmp_path / "types.onnx")
    runtime = start_runtime(model, model_name="types", max_batch_size=8)
    row, measured = perf_analyzer(runtime, "grpc", 4, tmp_path / "grpc.csv")
    assert row["Concurrency"] == "4"
    assert float(row["Inferences/Second"]) > 0
    assert_all_answered(runtime, "grpc", measured)
    row, measured = perf_analyzer(runtime, "http", 3, tmp_path / "http.csv")
    assert row["Concurrency"] == "3"
    assert_all_answered(runtime, "rest", measured)
