"""Weighted splits through the router: shares inside a 99.9% binomial interval, 0 and 100 exact."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.conftest import Models, StartRouter
from tests.e2e.load import (
    Outcome,
    binomial_interval,
    closed_loop,
    connect,
    failures,
    features,
    shares,
)
from tests.e2e.nginx import Nginx, upstream
from tests.runtime.harness import StartRuntime

CONCURRENCY = 8
# (canary percent, requests): several thousand where the share is random, fewer where exact.
STEPS = ((0, 500), (10, 3000), (50, 3000), (100, 500))


async def send_all(router: Nginx, protocol: str, total: int) -> list[Outcome]:
    """`total` requests with no X-Request-ID, so nginx draws a fresh split key for each."""
    client = connect(protocol, router)
    try:
        return await closed_loop(lambda i: client.infer(features(i)), total, CONCURRENCY)
    finally:
        await client.aclose()


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_canary_share_follows_the_weight(
    protocol: str, start_runtime: StartRuntime, start_router: StartRouter, models: Models
) -> None:
    stable = start_runtime(models.stable, model_version="1")
    canary = start_runtime(models.stable, model_version="2")
    router = start_router([upstream("stable", stable, 100), upstream("canary", canary, 0)])
    for percent, total in STEPS:
        router.reload(
            router.config(
                [upstream("stable", stable, 100 - percent), upstream("canary", canary, percent)]
            )
        )
        outcomes = asyncio.run(send_all(router, protocol, total))
        assert failures(outcomes) == {}
        answered = shares(outcomes)
        assert set(answered) <= {"1", "2"}
        to_canary = answered["2"]
        if percent in (0, 100):
            assert to_canary == total * percent // 100
        else:
            low, high = binomial_interval(total, percent / 100)
            assert low <= to_canary <= high, f"{to_canary} of {total} at {percent}%"
