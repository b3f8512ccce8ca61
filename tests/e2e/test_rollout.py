"""Traffic moves under a steady load without losing a request.

A client starts requests at a fixed rate (open loop: a stall shows up as failures or queued
latency, never as a quietly lower rate) while the router config is re-rendered and nginx
reloaded, and a revision's runtime is drained with SIGTERM. Every request is counted.

A reload makes nginx close its idle HTTP/1.1 keep-alive connections; a request written on
one at that instant sees the connection close unanswered. The REST client then retries once
on a fresh connection (what RFC 9110 9.2.2 allows and HTTP/1.1 clients do); the tests prove
no retried attempt had reached a runtime by checking that the runtimes answered exactly as
many requests as the client sent. gRPC needs no retry: nginx sends HTTP/2 GOAWAY.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import pytest
from sluice_operator.router import Upstream

from tests.e2e.conftest import Models, StartRouter
from tests.e2e.load import Outcome, connect, failures, features, open_loop, shares
from tests.e2e.nginx import Nginx, upstream
from tests.runtime.harness import RuntimeProcess, StartRuntime

RATE = 100.0  # requests per second
PHASE_SECONDS = 2.0  # load kept on each traffic state


async def under_load(
    protocol: str, entry: Nginx, steps: Sequence[Callable[[], object]]
) -> tuple[list[Outcome], list[tuple[float, float]]]:
    """Run `steps` in order, one phase of steady load before and after each.

    Returns every outcome and, per step, the perf_counter times it began and completed.
    """
    client = connect(protocol, entry, retry=True)
    stop = asyncio.Event()
    load = asyncio.create_task(open_loop(lambda i: client.infer(features(i)), RATE, stop))
    marks: list[tuple[float, float]] = []
    try:
        await asyncio.sleep(PHASE_SECONDS)
        for step in steps:
            began = time.perf_counter()
            await asyncio.to_thread(step)
            marks.append((began, time.perf_counter()))
            await asyncio.sleep(PHASE_SECONDS)
    finally:
        stop.set()
        outcomes = await load
        await client.aclose()
    return outcomes, marks


def answered(runtime: RuntimeProcess, protocol: str) -> int:
    """Requests the runtime has answered over `protocol`, by its own metrics."""
    return int(runtime.metric("sluice_requests_total", protocol=protocol))


def between(outcomes: list[Outcome], start: float, end: float) -> list[Outcome]:
    return [outcome for outcome in outcomes if start <= outcome.started < end]


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_rollout_0_10_50_100_then_drain_loses_no_request(
    protocol: str, start_runtime: StartRuntime, start_router: StartRouter, models: Models
) -> None:
    old = start_runtime(models.stable, model_version="1")
    new = start_runtime(models.twin, model_version="2")

    def weights(to_new: int) -> list[Upstream]:
        return [upstream("old", old, 100 - to_new), upstream("new", new, to_new)]

    router = start_router(weights(0))
    old_answered: list[int] = []
    exit_codes: list[int] = []

    def move(percent: int) -> Callable[[], None]:
        return lambda: router.reload(router.config(weights(percent)))

    def drain_old() -> None:
        old_answered.append(answered(old, protocol))  # no traffic reaches it any more
        exit_codes.append(old.stop())

    steps = [move(10), move(50), move(100), drain_old]
    outcomes, marks = asyncio.run(under_load(protocol, router, steps))

    assert failures(outcomes) == {}, f"{len(outcomes)} requests sent"
    assert exit_codes == [0]
    assert old_answered[0] + answered(new, protocol) == len(outcomes)
    assert len(outcomes) >= RATE * PHASE_SECONDS * (len(steps) + 1) * 0.8
    assert set(shares(between(outcomes, 0, marks[0][0]))) == {"1"}
    assert set(shares(between(outcomes, marks[1][1], marks[2][0]))) == {"1", "2"}
    assert set(shares(between(outcomes, marks[2][1], float("inf")))) == {"2"}


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_switching_the_entry_point_between_direct_and_router_loses_no_request(
    protocol: str, start_runtime: StartRuntime, start_router: StartRouter, models: Models
) -> None:
    """The `<isvc>` Service selecting the stable pods, then the router, then the pods again."""
    stable = start_runtime(models.stable, model_version="1")
    canary = start_runtime(models.twin, model_version="2")
    router = start_router([upstream("stable", stable, 50), upstream("canary", canary, 50)])
    direct = upstream("entry", stable, 100)
    via_router = Upstream(
        revision="entry",
        http=f"127.0.0.1:{router.http_port}",
        grpc=f"127.0.0.1:{router.grpc_port}",
        weight=100,
    )
    entry = start_router([direct])

    def point(target: Upstream) -> Callable[[], None]:
        return lambda: entry.reload(entry.config([target]))

    outcomes, marks = asyncio.run(under_load(protocol, entry, [point(via_router), point(direct)]))

    assert failures(outcomes) == {}, f"{len(outcomes)} requests sent"
    assert answered(stable, protocol) + answered(canary, protocol) == len(outcomes)
    assert set(shares(between(outcomes, 0, marks[0][0]))) == {"1"}
    assert set(shares(between(outcomes, marks[0][1], marks[1][0]))) == {"1", "2"}
    assert set(shares(between(outcomes, marks[1][1], float("inf")))) == {"1"}
