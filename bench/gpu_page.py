"""bench/results/gpu.md: Sluice on a GPU as a share of raw onnxruntime-gpu on that GPU.

Pure rendering plus the one place the page asks the machine what it is (nvidia-smi), so a
reader knows which card the figures belong to and can rerun them (`make bench-gpu`).
"""

from __future__ import annotations

import argparse
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import onnxruntime

from bench.machine import cpu_model
from bench.peers_page import Floor, floor_table
from bench.peers_report import Row

TARGET_SHARE = 0.9


@dataclass(frozen=True)
class GpuRow:
    """One measured point with what it is compared to: raw onnxruntime-gpu at `floor.batch`."""

    row: Row
    rows_per_request: int
    server_batch: int
    workers: int
    floor: Floor
    error: float

    @property
    def rows_per_s(self) -> float:
        return self.row.rps * self.rows_per_request

    @property
    def share(self) -> float:
        """Sluice's rows/s over raw onnxruntime-gpu's at the batch size it is compared with."""
        return self.rows_per_s / self.floor.rows_per_s

    def as_dict(self) -> dict[str, object]:
        return {
            **self.row.as_dict(),
            "rows_per_request": self.rows_per_request,
            "server_batch": self.server_batch,
            "workers": self.workers,
            "floor_batch": self.floor.batch,
            "rows_per_s": self.rows_per_s,
            "share_of_raw": self.share,
            "relative_error": self.error,
        }


def gpu_name() -> str:
    """The card and driver as nvidia-smi names them."""
    query = ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"]
    try:
        out = subprocess.run(query, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown GPU"
    name, _, driver = out.strip().splitlines()[0].partition(", ")
    return f"{name} (driver {driver})"


def rows_table(rows: Sequence[GpuRow]) -> list[str]:
    lines = [
        "| server | workers | rows per request | concurrency | req/s | rows/s | p50 ms | p99 ms "
        "| server CPU ms/req | share of raw (batch) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        label = r.row.point.server.rsplit("-w", 1)[0]
        if r.server_batch:
            label += f" (max {r.server_batch})"
        lines.append(
            f"| {label} | {r.workers} | {r.rows_per_request} | {r.row.point.concurrency} "
            f"| {r.row.rps:,.0f} "
            f"| {r.rows_per_s:,.0f} | {r.row.p50_ms:.3f} | {r.row.p99_ms:.3f} "
            f"| {r.row.server_cpu_ms:.3f} | {r.share:.0%} (batch {r.floor.batch}) |"
        )
    return lines


def target_lines(rows: Sequence[GpuRow]) -> list[str]:
    """Issue 7: at batch 32, Sluice reaches at least 90% of raw onnxruntime-gpu's rows/s."""
    at_32 = [r for r in rows if r.rows_per_request > 1 and r.server_batch == 0]
    if not at_32:
        return []
    best = max(at_32, key=lambda r: r.share)
    met = "met" if best.share >= TARGET_SHARE else "**not met**"
    return [
        "## Target (issue 7)",
        "",
        f"- Batch {best.rows_per_request} requests: Sluice reaches {best.share:.0%} of raw "
        f"onnxruntime-gpu's rows/s ({best.workers} worker(s), concurrency "
        f"{best.row.point.concurrency}); target {TARGET_SHARE:.0%}: {met}.",
        "",
    ]


def write_gpu_page(
    out: Path, floors: Sequence[Floor], rows: Sequence[GpuRow], args: argparse.Namespace
) -> None:
    worst = max((r.error for r in rows), default=0.0)
    lines = [
        "# Sluice on a GPU: share of raw onnxruntime-gpu",
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.gpu_run` "
        f"(`make bench-gpu`), Sluice `{args.commit}`.",
        "",
        *target_lines(rows),
        "## Setup",
        "",
        f"- GPU: {gpu_name()}. CPU: {cpu_model()}; Python {platform.python_version()}, "
        f"onnxruntime-gpu {onnxruntime.__version__} (CUDA execution provider, default options).",
        "- Model: the peer benchmark's MLP 1024-4096-16 (4.2 M parameters, FP32).",
        f"- Raw onnxruntime-gpu: one session in-process, `session.run` back to back on one numpy "
        f"batch for {args.seconds} s (each run copies the batch in and the answer out), on "
        f"cores {args.server_cores}.",
        f"- Sluice: `--device cuda`, on cores {args.server_cores} (`taskset`), one worker or "
        f"`--workers N` (N processes, each with its own event loop, session and CUDA context); "
        f"grpcload on cores {args.client_cores} with {args.client_procs} OS threads and "
        f"{args.connections} HTTP/2 connections, closed loop. Each point: a {args.warmup} s "
        f"warm-up, then {args.repeats} runs of {args.seconds} s, medians.",
        "- Share of raw: Sluice's rows/s over raw onnxruntime-gpu's at the batch size of one "
        "request (the same work asked for; dynamic batching may merge requests into larger "
        "runs, which raw onnxruntime at that batch size does not).",
        f"- Every server's answer was checked against raw onnxruntime-gpu's before it was "
        f"measured: largest relative error {worst:.1e}.",
        "",
        "## Raw onnxruntime-gpu",
        "",
        *floor_table(floors),
        "",
        "## Sluice",
        "",
        *rows_table(rows),
        "",
    ]
    out.write_text("\n".join(lines))
