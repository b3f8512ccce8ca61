"""Sticky routing, request ids, and a clear answer (never a hang) when a revision dies."""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict

import httpx
import pytest

from tests.e2e.conftest import Models, StartRouter
from tests.e2e.load import Outcome, binomial_interval, connect, features
from tests.e2e.nginx import Nginx, upstream
from tests.runtime.harness import StartRuntime

STICKY = "X-User-Id"
NGINX_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


async def send_with_headers(
    router: Nginx, protocol: str, header_sets: list[dict[str, str]]
) -> list[Outcome]:
    """One request per header set, eight at a time, in order of the list."""
    client = connect(protocol, router)
    limit = asyncio.Semaphore(8)

    async def one(index: int, headers: dict[str, str]) -> Outcome:
        async with limit:
            return await client.infer(features(index), headers)

    try:
        return list(await asyncio.gather(*(one(i, h) for i, h in enumerate(header_sets))))
    finally:
        await client.aclose()


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_sticky_header_pins_each_caller_and_spreads_callers_by_weight(
    protocol: str, start_runtime: StartRuntime, start_router: StartRouter, models: Models
) -> None:
    stable = start_runtime(models.stable, model_version="1")
    canary = start_runtime(models.stable, model_version="2")
    router = start_router(
        [upstream("stable", stable, 80), upstream("canary", canary, 20)], sticky_header=STICKY
    )

    fixed = asyncio.run(send_with_headers(router, protocol, [{STICKY: "alice"}] * 200))
    assert all(outcome.ok for outcome in fixed)
    assert len({outcome.version for outcome in fixed}) == 1

    users = [f"user-{index}" for index in range(1000)]
    outcomes = asyncio.run(
        send_with_headers(router, protocol, [{STICKY: user} for user in users * 2])
    )
    assert all(outcome.ok for outcome in outcomes)
    versions: dict[str, set[str | None]] = defaultdict(set)
    for user, outcome in zip(users * 2, outcomes, strict=True):
        versions[user].add(outcome.version)
    assert all(len(seen) == 1 for seen in versions.values()), "a caller moved between revisions"
    on_canary = sum(1 for seen in versions.values() if seen == {"2"})
    low, high = binomial_interval(len(users), 0.2)
    assert low <= on_canary <= high


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_request_id_is_generated_when_absent_and_passed_through(
    protocol: str, start_runtime: StartRuntime, start_router: StartRouter, models: Models
) -> None:
    runtime = start_runtime(models.stable)
    router = start_router([upstream("stable", runtime, 100)])
    generated, given = asyncio.run(
        send_with_headers(router, protocol, [{}, {"X-Request-ID": "trace-42"}])
    )
    # The id the runtime answered with is the one nginx generated and passed on.
    assert generated.ok
    assert generated.request_id is not None
    assert NGINX_REQUEST_ID.match(generated.request_id)
    assert given.ok
    assert given.request_id == "trace-42"


def test_rest_response_carries_the_request_id_header(
    start_runtime: StartRuntime, start_router: StartRouter, models: Models
) -> None:
    runtime = start_runtime(models.stable)
    router = start_router([upstream("stable", runtime, 100)])
    body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 64], "data": [0.5] * 64}]}
    url = f"{router.http_url}/v2/models/model/infer"
    answer = httpx.post(url, json=body, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["x-request-id"] == answer.json()["id"]
    assert NGINX_REQUEST_ID.match(answer.headers["x-request-id"])
    given = httpx.post(url, json=body, headers={"X-Request-ID": "abc-123"}, timeout=10)
    assert given.headers["x-request-id"] == "abc-123" == given.json()["id"]


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_a_dead_revision_gets_a_clear_error_not_a_hang(
    protocol: str, start_runtime: StartRuntime, start_router: StartRouter, models: Models
) -> None:
    stable = start_runtime(models.stable, model_version="1")
    canary = start_runtime(models.stable, model_version="2")
    router = start_router([upstream("stable", stable, 50), upstream("canary", canary, 50)])
    assert canary.stop() == 0
    # Client timeout 10 s; nginx would wait 120 s on a hung upstream, so a hang fails here.
    outcomes = asyncio.run(send_with_headers(router, protocol, [{}] * 200))
    failed = [outcome for outcome in outcomes if not outcome.ok]
    assert {outcome.status for outcome in failed} == {
        "502" if protocol == "rest" else "UNAVAILABLE"
    }
    assert {outcome.version for outcome in outcomes if outcome.ok} == {"1"}
    low, high = binomial_interval(200, 0.5)
    assert low <= len(failed) <= high
