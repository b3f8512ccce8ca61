"""Closed-loop load and its figures: requests/s, latency percentiles, CPU of both sides.

`concurrency` workers each send a request, wait for its answer and send the next, for a
warm-up and then a measured window. CPU time is read for the client (this process) and
the server (its /proc entry) over the same window, so a row shows which side was busy.
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.runtime_client import Call

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class LoadResult:
    """One measured point."""

    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    client_cpu: float  # cores busy on average (1.0 = one core flat out)
    server_cpu: float | None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def percentiles(latencies_s: Sequence[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    if not latencies_s:
        return float("nan"), float("nan")
    p50, p99 = np.percentile(np.asarray(latencies_s) * 1000.0, [50, 99])
    return float(p50), float(p99)


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def closed_loop(
    workers: Sequence[Call], warmup_s: float, measure_s: float, server_pid: int | None
) -> LoadResult:
    """Run every worker in a loop; count only what completes inside the measured window."""
    latencies: list[float] = []
    errors = 0
    clock = time.perf_counter
    start = clock()
    measure_from = start + warmup_s
    stop_at = measure_from + measure_s

    async def loop(call: Call) -> None:
        nonlocal errors
        while True:
            sent = clock()
            if sent >= stop_at:
                return
            try:
                await call()
            except Exception:
                errors += sent >= measure_from
                continue
            done = clock()
            if sent >= measure_from and done <= stop_at:
                latencies.append(done - sent)

    async def sample_at(moment: float, read: Callable[[], Any]) -> Any:
        await asyncio.sleep(max(0.0, moment - clock()))
        return read()

    def snapshot() -> tuple[float, float | None]:
        server = None if server_pid is None else process_cpu_seconds(server_pid)
        return _own_cpu_seconds(), server

    tasks = [asyncio.create_task(loop(call)) for call in workers]
    before = await sample_at(measure_from, snapshot)
    after = await sample_at(stop_at, snapshot)
    await asyncio.gather(*tasks)
    p50, p99 = percentiles(latencies)
    server_cpu = None
    if before[1] is not None and after[1] is not None:
        server_cpu = (after[1] - before[1]) / measure_s
    return LoadResult(
        requests=len(latencies),
        errors=errors,
        seconds=measure_s,
        p50_ms=p50,
        p99_ms=p99,
        client_cpu=(after[0] - before[0]) / measure_s,
        server_cpu=server_cpu,
    )


def time_calls(call: Callable[[], Any], warmup_s: float, measure_s: float) -> LoadResult:
    """The same figures for a blocking in-process call made back to back (the floor)."""
    clock = time.perf_counter
    end_warmup = clock() + warmup_s
    while clock() < end_warmup:
        call()
    latencies = []
    cpu_before = _own_cpu_seconds()
    start = clock()
    while (now := clock()) < start + measure_s:
        call()
        latencies.append(clock() - now)
    elapsed = clock() - start
    p50, p99 = percentiles(latencies)
    return LoadResult(
        requests=len(latencies),
        errors=0,
        seconds=elapsed,
        p50_ms=p50,
        p99_ms=p99,
        client_cpu=(_own_cpu_seconds() - cpu_before) / elapsed,
        server_cpu=None,
    )
