"""`make bench` (`python -m bench`): the runtime on the fixed MLP, beside onnxruntime itself.

The model is tests/models.py's MLP (64 -> 256 -> 10, dynamic batch), one row per request.
The floor is onnxruntime in this process, batch 1, one call after another, and batch N
(what merging N requests into one run costs at best). Then, for the runtime with dynamic
batching off and on: REST with the binary tensor extension, REST with JSON tensors and
gRPC, each at concurrency 1, 16 and 64, answers first checked against onnxruntime's.

The server runs pinned to core 0 and the client to core 1 (`taskset`/sched_setaffinity),
so neither starves the other. Writes bench/results/runtime.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import uvloop
from sluice_runtime.model import session_options

from bench.machine import commit, cpu_model
from bench.runtime_client import (
    Call,
    GrpcClient,
    RestClient,
    rest_binary_body,
    rest_json_body,
)
from bench.runtime_load import LoadResult, closed_loop, time_calls
from tests.models import mlp
from tests.runtime.harness import RuntimeProcess, launch

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "runtime.md"
SERVER_CORE = 0
CLIENT_CORE = 1
CONCURRENCIES = (1, 16, 64)
PROTOCOLS = ("rest-binary", "rest-json", "grpc")
MODEL = "mlp"
INPUT, OUTPUT = "input", "output"


@dataclass(frozen=True)
class Config:
    label: str
    flags: dict[str, str]


CONFIGS = (
    Config("batching off", {"--max-batch-size": "0"}),
    Config(
        "batching on (max 64 rows, 1000 us delay)",
        {"--max-batch-size": "64", "--max-batch-delay-us": "1000"},
    ),
)


@dataclass(frozen=True)
class Row:
    config: str
    protocol: str
    concurrency: int
    result: LoadResult


@contextmanager
def running_server(model: Path, config: Config, log_path: Path) -> Iterator[RuntimeProcess]:
    """`sluice-runtime serve` under taskset, ready; stopped with SIGTERM afterwards."""
    flags: dict[str, Any] = {
        flag.removeprefix("--").replace("-", "_"): value for flag, value in config.flags.items()
    }
    server = launch(
        model.as_uri(),
        log_path,
        launcher=("taskset", "-c", str(SERVER_CORE)),
        model_name=MODEL,
        warmup_requests=4,
        intra_op_threads=1,
        **flags,
    )
    try:
        server.wait_ready(timeout=120.0)
        yield server
    finally:
        try:
            server.stop()
        finally:
            if server.process.poll() is None:
                server.process.kill()
                server.process.wait()
            server._log_file.close()


def floor(model: Path, warmup_s: float, measure_s: float) -> list[tuple[str, LoadResult]]:
    """onnxruntime in-process on the server's core: batch 1, and batch N per concurrency."""
    session = ort.InferenceSession(
        str(model), session_options(1), providers=["CPUExecutionProvider"]
    )  # the server's own session options, one thread
    rows = []
    for batch in (1, *CONCURRENCIES[1:]):
        x = np.random.default_rng(batch).standard_normal((batch, 64)).astype(np.float32)
        result = time_calls(partial(session.run, None, {INPUT: x}), warmup_s, measure_s)
        rows.append((f"batch {batch}", result))
    return rows


def _client(
    protocol: str, server: RuntimeProcess, x: np.ndarray[Any, Any]
) -> RestClient | GrpcClient:
    if protocol == "grpc":
        return GrpcClient(server.grpc_address, MODEL, INPUT, x)
    body, headers = (
        rest_binary_body(INPUT, OUTPUT, x)
        if protocol == "rest-binary"
        else rest_json_body(INPUT, x)
    )
    return RestClient(server.http_url, MODEL, body, headers)


@dataclass(frozen=True)
class Timing:
    """Each point: a warm-up, then `repeats` measured windows of `measure_s`; the median
    window (by requests/s) is reported, so one burst of other work on the machine does
    not decide a row."""

    warmup_s: float
    measure_s: float
    repeats: int


async def _median_window(workers: Sequence[Call], timing: Timing, server_pid: int) -> LoadResult:
    windows = []
    for attempt in range(timing.repeats):
        warmup_s = timing.warmup_s if attempt == 0 else 0.2
        windows.append(await closed_loop(workers, warmup_s, timing.measure_s, server_pid))
    return sorted(windows, key=lambda window: window.rps)[len(windows) // 2]


async def measure(
    server: RuntimeProcess, config: Config, expected: np.ndarray[Any, Any], x: np.ndarray[Any, Any],
    timing: Timing,
) -> list[Row]:  # fmt: skip
    rows = []
    for protocol in PROTOCOLS:
        for concurrency in CONCURRENCIES:
            client = _client(protocol, server, x)
            try:
                answer = await client.answer()
                np.testing.assert_allclose(answer, expected, rtol=1e-5, atol=1e-6)
                workers = [client.worker() for _ in range(concurrency)]
                result = await _median_window(workers, timing, server.process.pid)
            finally:
                await client.close()
            print(
                f"{config.label:>42} {protocol:>11} c={concurrency:<3} "
                f"{result.rps:8.0f} req/s  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms"
                f"  errors {result.errors}",
                file=sys.stderr,
            )
            rows.append(Row(config.label, protocol, concurrency, result))
    return rows


def render(
    floors: Sequence[tuple[str, LoadResult]],
    rows: Sequence[Row],
    timing: Timing,
    load: tuple[float, float],
) -> str:
    """The results page; `load` is the 1-minute load average before and after the run."""
    lines = [
        "# Runtime benchmark",
        "",
        "Generated by `make bench` (`python -m bench`); numbers from one run, "
        f"commit `{commit()}`, {time.strftime('%Y-%m-%d')}.",
        "",
        "## Method",
        "",
        "- Model: the fixed MLP of `tests/models.py` (FP32 input [batch, 64], 256 hidden, "
        "10 outputs, dynamic batch); every request carries one row.",
        f"- Machine: {os.cpu_count()} cores ({cpu_model()}), shared with other work; "
        f"Python {platform.python_version()}, onnxruntime {ort.__version__}, CPU provider; "
        f"1-minute load average {load[0]:.1f} before the run and {load[1]:.1f} after "
        "(anything well above 2 means other work competed for these cores).",
        f"- Server: `sluice-runtime serve` pinned to core {SERVER_CORE} with `taskset`; "
        "with `--intra-op-threads 1` (onnxruntime pins its own pool threads, which would "
        "otherwise leave the server's core); "
        f"client: this process pinned to core {CLIENT_CORE}, one asyncio (uvloop) event loop "
        "running `concurrency` closed-loop workers: raw HTTP/1.1 keep-alive connections with "
        "pre-encoded bodies (one per worker) for REST, one grpc.aio channel with a prebuilt "
        "message for gRPC. Every protocol's answer is first checked against onnxruntime's.",
        f"- Each point: {timing.warmup_s:g} s warm-up, then {timing.repeats} measured windows "
        f"of {timing.measure_s:g} s; the row is the median window by requests/s (the machine "
        "is shared, and one burst of other work should not decide a row). Latency is per request, "
        "send to answer, as the client sees it. CPU columns are cores busy on average "
        "(1.00 = one core flat out): when the client column nears 1.00 the client, not the "
        "server, is the limit; when the server column stays well under 1.00 at high "
        "concurrency, other work on the machine took the server's core. Server CPU "
        "microseconds per request is the figure least moved by such neighbours.",
        "- Floor: onnxruntime `session.run` in-process on the server's core, one call after "
        "another; batch N shows what running N requests as one batch costs at best "
        "(requests/s = N x runs/s).",
        "",
        "## Floor: onnxruntime in-process",
        "",
        "| run | requests/s | p50 ms (per run) | p99 ms (per run) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, result in floors:
        batch = int(label.split()[-1])
        lines.append(
            f"| {label} | {result.rps * batch:,.0f} | {result.p50_ms:.3f} | {result.p99_ms:.3f} |"
        )
    for config in CONFIGS:
        lines += [
            "",
            f"## Runtime, {config.label}",
            "",
            "| protocol | concurrency | requests/s | p50 ms | p99 ms | errors | server CPU "
            "| server CPU us/request | client CPU |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in rows:
            if row.config != config.label:
                continue
            r = row.result
            server_cpu, per_request = "-", "-"
            if r.server_cpu is not None:
                server_cpu = f"{r.server_cpu:.2f}"
                per_request = f"{r.server_cpu / r.rps * 1e6:,.0f}" if r.rps else "-"
            lines.append(
                f"| {row.protocol} | {row.concurrency} | {r.rps:,.0f} | {r.p50_ms:.2f} | "
                f"{r.p99_ms:.2f} | {r.errors} | {server_cpu} | {per_request} | "
                f"{r.client_cpu:.2f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per measured window")
    parser.add_argument("--repeats", type=int, default=3, help="measured windows per point")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    timing = Timing(warmup_s=1.0, measure_s=args.seconds, repeats=args.repeats)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="sluice-bench-") as tmp:
        model = mlp(Path(tmp) / "mlp.onnx")
        os.sched_setaffinity(0, {SERVER_CORE})
        floors = floor(model, timing.warmup_s, timing.measure_s * timing.repeats)
        os.sched_setaffinity(0, {CLIENT_CORE})
        x = np.random.default_rng(0).standard_normal((1, 64)).astype(np.float32)
        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        expected = session.run(None, {INPUT: x})[0]
        rows: list[Row] = []
        for index, config in enumerate(CONFIGS):
            with running_server(model, config, Path(tmp) / f"server-{index}.log") as server:
                rows += uvloop.run(measure(server, config, expected, x, timing))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    load = (load_before, os.getloadavg()[0])
    args.output.write_text(render(floors, rows, timing, load))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
