"""Traffic benchmark (part of `make bench`): what the router hop and the shadow tee cost.

Same MLP, same lean clients and closed loop as the runtime benchmark (bench/runtime_*.py).

- Router hop: one runtime (batching off), reached directly and through nginx running the
  operator's rendered router config (one revision at 100%, one worker). Direct and routed
  points alternate so drift on this shared machine hits both alike. The difference in p50
  and p99 at concurrency 1 is the hop's latency; requests/s at 16 and 64 its ceiling.
- Shadow tee: the primary runtime with no shadow, then copying 10% and 100% of requests to
  a shadow that costs next to nothing (an nginx answering 200 at once), so what changes is
  the primary's own work: sampling, encoding, sending. Server CPU per request shows it
  even where throughput hides it; a last variant sends 100% to a real shadow runtime.

Runtimes run on core 0; client, nginx and shadows on core 1 (the runtime keeps its core).
Writes bench/results/traffic.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import uvloop
from sluice_operator.router import Upstream

from bench.runtime_client import GrpcClient, RestClient, rest_binary_body
from bench.runtime_load import LoadResult, closed_loop
from bench.runtime_run import CLIENT_CORE, INPUT, MODEL, OUTPUT, Config, running_server
from tests.e2e.nginx import Nginx
from tests.models import mlp
from tests.runtime.harness import RuntimeProcess

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "traffic.md"
PROTOCOLS = ("rest-binary", "grpc")
ROUTER_CONCURRENCIES = (1, 16, 64)
SHADOW_CONCURRENCIES = (1, 16)
PINNED = ("taskset", "-c", str(CLIENT_CORE))
NO_BATCHING = {"--max-batch-size": "0"}

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Point:
    variant: str
    protocol: str
    concurrency: int
    result: LoadResult


@dataclass(frozen=True)
class Target:
    """Where a point's requests go, and whose CPU the point reports."""

    variant: str
    url: str
    grpc_address: str
    server_pid: int


def _client(protocol: str, target: Target, x: Array) -> RestClient | GrpcClient:
    if protocol == "grpc":
        return GrpcClient(target.grpc_address, MODEL, INPUT, x)
    body, headers = rest_binary_body(INPUT, OUTPUT, x)
    return RestClient(target.url, MODEL, body, headers)


async def measure(
    targets: Sequence[Target],
    concurrencies: Sequence[int],
    expected: Array,
    x: Array,
    warmup_s: float,
    measure_s: float,
) -> list[Point]:
    """Every protocol x concurrency, the targets one after another at each point."""
    points = []
    for protocol in PROTOCOLS:
        for concurrency in concurrencies:
            for target in targets:
                client = _client(protocol, target, x)
                try:
                    np.testing.assert_allclose(await client.answer(), expected, rtol=1e-5)
                    workers = [client.worker() for _ in range(concurrency)]
                    result = await closed_loop(workers, warmup_s, measure_s, target.server_pid)
                finally:
                    await client.close()
                print(
                    f"{target.variant:>34} {protocol:>11} c={concurrency:<3} "
                    f"{result.rps:8.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
                    f"p99 {result.p99_ms:6.2f} ms  errors {result.errors}",
                    file=sys.stderr,
                )
                points.append(Point(target.variant, protocol, concurrency, result))
    return points


def _target(variant: str, server: RuntimeProcess) -> Target:
    return Target(variant, server.http_url, server.grpc_address, server.process.pid)


def router_points(
    model: Path, tmp: Path, expected: Array, x: Array, warmup_s: float, measure_s: float
) -> list[Point]:
    """Direct to the runtime vs through the rendered router."""
    with running_server(
        model, Config("primary", NO_BATCHING), tmp / "router-runtime.log"
    ) as server:
        router = Nginx(tmp / "router", launcher=PINNED)
        config = router.config(
            [Upstream("stable", f"127.0.0.1:{server.http_port}", server.grpc_address, 100)],
            worker_processes="1",
        )
        router.start(config)
        try:
            routed = Target(
                "through router", router.http_url, router.grpc_address, server.process.pid
            )
            targets = [_target("direct", server), routed]
            return uvloop.run(
                measure(targets, ROUTER_CONCURRENCIES, expected, x, warmup_s, measure_s)
            )
        finally:
            router.stop()


def sink_config(workdir: Path, port: int) -> str:
    """An nginx that answers every request 200 at once: a shadow that costs nothing."""
    return "\n".join(
        [
            "daemon off;",
            "worker_processes 1;",
            f"pid {workdir}/nginx.pid;",
            "error_log stderr warn;",
            "events { worker_connections 1024; }",
            "http {",
            f"    client_body_temp_path {workdir}/client_body;",
            "    access_log off;",
            "    client_max_body_size 64m;",
            "    client_body_buffer_size 1m;",
            f"    server {{ listen 127.0.0.1:{port}; location / {{ return 200 '{{}}'; }} }}",
            "}",
            "",
        ]
    )


def shadow_points(
    model: Path, tmp: Path, expected: Array, x: Array, warmup_s: float, measure_s: float
) -> list[Point]:
    """The primary without a shadow, then teeing to a free sink, then to a real runtime."""
    sink = Nginx(tmp / "sink", launcher=PINNED)
    sink.start(sink_config(sink.workdir, sink.health_port))
    points: list[Point] = []
    try:
        sink_url = f"http://127.0.0.1:{sink.health_port}"
        variants = [
            ("no shadow", {}),
            ("tee 10% to a no-op sink", {"--shadow-url": sink_url, "--shadow-percent": "10"}),
            ("tee 100% to a no-op sink", {"--shadow-url": sink_url, "--shadow-percent": "100"}),
        ]
        for index, (label, flags) in enumerate(variants):
            config = Config(label, {**NO_BATCHING, **flags})
            with running_server(model, config, tmp / f"primary-{index}.log") as server:
                points += uvloop.run(
                    measure(
                        [_target(label, server)], SHADOW_CONCURRENCIES, expected, x, warmup_s,
                        measure_s,
                    )
                )  # fmt: skip
        points += real_shadow_points(model, tmp, expected, x, warmup_s, measure_s)
    finally:
        sink.stop()
    return points


def real_shadow_points(
    model: Path, tmp: Path, expected: Array, x: Array, warmup_s: float, measure_s: float
) -> list[Point]:
    """100% copied to a shadow runtime serving the same model, moved to the client's core."""
    label = "tee 100% to a shadow runtime"
    with running_server(model, Config("shadow", NO_BATCHING), tmp / "shadow.log") as shadow:
        pin(shadow.process.pid, CLIENT_CORE)
        flags = {**NO_BATCHING, "--shadow-url": shadow.http_url, "--shadow-percent": "100"}
        with running_server(model, Config(label, flags), tmp / "primary-real.log") as server:
            targets = [_target(label, server)]
            return uvloop.run(
                measure(targets, SHADOW_CONCURRENCIES, expected, x, warmup_s, measure_s)
            )


def pin(pid: int, core: int) -> None:
    """Move every thread of a running process to one core (affinity is per thread)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), {core})


def render_router(points: Sequence[Point]) -> list[str]:
    lines = [
        "## Router hop",
        "",
        "| protocol | concurrency | direct req/s | routed req/s | routed/direct | direct p50 ms "
        "| routed p50 ms | added p50 ms | direct p99 ms | routed p99 ms | added p99 ms "
        "| errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    by_key = {(p.variant, p.protocol, p.concurrency): p.result for p in points}
    for protocol in PROTOCOLS:
        for concurrency in ROUTER_CONCURRENCIES:
            direct = by_key[("direct", protocol, concurrency)]
            routed = by_key[("through router", protocol, concurrency)]
            lines.append(
                f"| {protocol} | {concurrency} | {direct.rps:,.0f} | {routed.rps:,.0f} | "
                f"{routed.rps / direct.rps:.2f} | {direct.p50_ms:.2f} | {routed.p50_ms:.2f} | "
                f"{routed.p50_ms - direct.p50_ms:+.2f} | {direct.p99_ms:.2f} | "
                f"{routed.p99_ms:.2f} | {routed.p99_ms - direct.p99_ms:+.2f} | "
                f"{direct.errors + routed.errors} |"
            )
    return lines


def render_shadow(points: Sequence[Point]) -> list[str]:
    lines = [
        "## Shadow tee on the primary",
        "",
        "| variant | protocol | concurrency | req/s | vs no shadow | p50 ms | p99 ms "
        "| server CPU | server CPU us/request | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    baseline = {(p.protocol, p.concurrency): p.result for p in points if p.variant == "no shadow"}
    for point in points:
        r = point.result
        base = baseline[(point.protocol, point.concurrency)]
        cpu = r.server_cpu or 0.0
        lines.append(
            f"| {point.variant} | {point.protocol} | {point.concurrency} | {r.rps:,.0f} | "
            f"{r.rps / base.rps:.2f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {cpu:.2f} | "
            f"{cpu / r.rps * 1e6:,.0f} | {r.errors} |"
        )
    return lines


def render(
    router: Sequence[Point], shadow: Sequence[Point], measure_s: float, load: tuple[float, float]
) -> str:
    lines = [
        "# Traffic benchmark",
        "",
        f"Generated by `make bench` (`python -m bench`), {time.strftime('%Y-%m-%d')}; one run.",
        "",
        "## Method",
        "",
        "- Model, clients and closed loop as in `runtime.md`: the MLP, one row per request, REST "
        "with the binary tensor extension over raw keep-alive connections, gRPC over one "
        "grpc.aio channel; each answer checked against onnxruntime's first.",
        f"- Runtime on core 0 (`taskset`), batching off; client, nginx and shadows on core "
        f"{CLIENT_CORE}. 1 s warm-up, {measure_s:g} s measured per point. 1-minute load "
        f"average {load[0]:.1f} before, {load[1]:.1f} after (above 2: other work competed).",
        "- Router: nginx 1.22 (Debian) on the config `sluice_operator.router.render` writes "
        "for a cluster (access log on, keep-alive to the upstream), one revision at 100%, "
        "`worker_processes 1`.",
        "- Shadow: `--shadow-url` at an nginx answering 200 at once (so the figures are the "
        "primary's own cost) or at a real runtime; server CPU is the primary's alone.",
        "",
        *render_router(router),
        "",
        *render_shadow(shadow),
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.traffic", description=__doc__)
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per point")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    warmup_s = 1.0
    load_before = os.getloadavg()[0]
    affinity = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {CLIENT_CORE})
        with tempfile.TemporaryDirectory(prefix="sluice-bench-traffic-") as folder:
            tmp = Path(folder)
            model = mlp(tmp / "mlp.onnx")
            x = np.random.default_rng(0).standard_normal((1, 64)).astype(np.float32)
            session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
            expected = session.run(None, {INPUT: x})[0]
            router = router_points(model, tmp, expected, x, warmup_s, args.seconds)
            shadow = shadow_points(model, tmp, expected, x, warmup_s, args.seconds)
    finally:
        os.sched_setaffinity(0, affinity)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(router, shadow, args.seconds, (load_before, os.getloadavg()[0])))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
