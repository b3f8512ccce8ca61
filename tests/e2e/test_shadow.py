"""Shadow copies between real runtimes: the share, the agreement, and no cost to clients.

The primary is started with `--shadow-url` and `--shadow-percent` (what the operator sets
through SLUICE_SHADOW_URL / SLUICE_SHADOW_PERCENT); the figures are read from both
runtimes' /metrics, the way Prometheus would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tests.e2e.conftest import FaultyShadow, Models
from tests.e2e.load import (
    Outcome,
    binomial_interval,
    closed_loop,
    connect,
    failures,
    features,
    percentile,
)
from tests.runtime.harness import RuntimeProcess, StartRuntime

SETTLE_TIMEOUT = 60.0
# A shadow on the client's path would add its 2 s to every request; the bound sits far
# below that and far above run-to-run noise on a shared 2-core machine (measured ratios are
# in bench/results/traffic.md and the README).
P99_RATIO_LIMIT = 3.0
P99_SLACK_SECONDS = 0.05


def send(runtime: RuntimeProcess, protocol: str, total: int, concurrency: int = 4) -> list[Outcome]:
    async def run() -> list[Outcome]:
        client = connect(protocol, runtime)
        try:
            return await closed_loop(lambda i: client.infer(features(i)), total, concurrency)
        finally:
            await client.aclose()

    return asyncio.run(run())


def copies(primary: RuntimeProcess, result: str) -> float:
    return primary.metric("sluice_shadow_copies_total", result=result)


def settle(primary: RuntimeProcess, shadow: RuntimeProcess) -> float:
    """Wait until every copy the primary sent is compared; returns the compared count."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    last = -1.0
    while time.monotonic() < deadline:
        sent = copies(primary, "sent")
        compared = shadow.metric("sluice_shadow_requests_total", result="compared")
        queued = primary.metric("sluice_shadow_queue_depth")
        if sent == compared == last and queued == 0:
            return compared
        last = compared
        time.sleep(0.2)
    raise AssertionError(f"shadow copies did not settle: sent {sent}, compared {compared}")


def test_shadow_sees_its_share_and_agrees_fully_with_an_identical_model(
    start_runtime: StartRuntime, models: Models
) -> None:
    shadow = start_runtime(models.twin, model_version="9")
    primary = start_runtime(
        models.stable, model_version="7", shadow_url=shadow.http_url, shadow_percent=30
    )
    outcomes = send(primary, "rest", 1500) + send(primary, "grpc", 1500)
    assert failures(outcomes) == {}

    compared = settle(primary, shadow)
    low, high = binomial_interval(len(outcomes), 0.30)
    assert low <= compared <= high
    assert copies(primary, "dropped") == copies(primary, "failed") == 0
    labels = {"primary_version": "7", "output": "output"}
    rows = shadow.metric("sluice_shadow_top1_rows_total", **labels)
    assert rows == compared  # one row per request
    assert shadow.metric("sluice_shadow_top1_agreements_total", **labels) == rows
    assert shadow.metric("sluice_shadow_abs_diff_bucket", le="1e-05", **labels) == compared
    for side in ("primary", "shadow"):
        count = shadow.metric("sluice_shadow_latency_seconds_count", side=side)
        assert count == compared
    # The shadow's answers went nowhere: clients only ever heard from the primary.
    assert {outcome.version for outcome in outcomes} == {"7"}


def test_a_different_model_agrees_measurably_less(
    start_runtime: StartRuntime, models: Models
) -> None:
    shadow = start_runtime(models.different, model_version="9")
    primary = start_runtime(
        models.stable, model_version="7", shadow_url=shadow.http_url, shadow_percent=100
    )
    outcomes = send(primary, "rest", 500)
    assert failures(outcomes) == {}

    compared = settle(primary, shadow)
    assert compared == 500
    labels = {"primary_version": "7", "output": "output"}
    agreement = shadow.metric("sluice_shadow_top1_agreements_total", **labels) / compared
    assert agreement < 0.5  # about 0.1 for these two random 10-class MLPs
    # Every request differs somewhere by more than rounding.
    assert shadow.metric("sluice_shadow_abs_diff_bucket", le="1e-05", **labels) == 0


def test_a_slow_or_failing_shadow_changes_nothing_for_clients(
    start_runtime: StartRuntime,
    start_faulty_shadow: Callable[..., FaultyShadow],
    models: Models,
) -> None:
    total = 1000
    baseline = start_runtime(models.stable, model_version="7")
    base = send(baseline, "rest", total)
    assert failures(base) == {}
    base_p99 = percentile([outcome.seconds for outcome in base], 99)

    for shadow, lost in (
        (start_faulty_shadow(delay_seconds=2.0), ("timeout", "dropped")),
        (start_faulty_shadow(status=500), ("rejected",)),
    ):
        primary = start_runtime(
            models.stable, model_version="7", shadow_url=shadow.url, shadow_percent=100
        )
        outcomes = send(primary, "rest", total)
        assert failures(outcomes) == {}
        p99 = percentile([outcome.seconds for outcome in outcomes], 99)
        assert p99 <= base_p99 * P99_RATIO_LIMIT + P99_SLACK_SECONDS, (p99, base_p99)
        # The copies were really attempted, and really lost.
        assert sum(copies(primary, result) for result in lost) > 0
        assert copies(primary, "sent") == 0
