"""Backoff arithmetic and the retry loop, with the random source and sleep injected."""

from __future__ import annotations

from typing import Any

import pytest
from sluice_runtime.errors import ModelLoadError
from sluice_runtime.registry.retry import RetryPolicy, TransientError, run_with_retries


def test_the_backoff_ceiling_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(attempts=10, base_delay=0.5, max_delay=3.0)
    assert [policy.delay(n, lambda: 1.0, None) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_full_jitter_scales_the_ceiling_by_the_random_draw() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=100.0)
    assert policy.delay(3, lambda: 0.25, None) == 1.0
    assert policy.delay(3, lambda: 0.0, None) == 0.0


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0)
    assert policy.delay(1, lambda: 0.5, retry_after=4.0) == 4.0
    assert policy.delay(1, lambda: 0.5, retry_after=3600.0) == 10.0
    assert policy.delay(4, lambda: 1.0, retry_after=2.0) == 8.0


@pytest.mark.parametrize("kwargs", [{"attempts": 0}, {"base_delay": -1.0}, {"max_delay": -0.5}])
def test_impossible_policies_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"attempts|delays"):
        RetryPolicy(**kwargs)


def test_transient_failures_are_retried_with_the_computed_sleeps() -> None:
    sleeps: list[float] = []
    retried: list[int] = []
    outcomes: list[Exception | str] = [TransientError("reset"), TransientError("503"), "ok"]

    def operation(attempt: int) -> str:
        outcome = outcomes[attempt - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    result = run_with_retries(
        operation,
        RetryPolicy(attempts=3, base_delay=1.0, max_delay=10.0),
        "fetching x",
        sleep=sleeps.append,
        random=lambda: 0.5,
        on_retry=lambda: retried.append(1),
    )
    assert result == "ok"
    assert sleeps == [0.5, 1.0]
    assert len(retried) == 2


def test_the_last_transient_failure_becomes_a_clear_error() -> None:
    calls: list[int] = []

    def operation(attempt: int) -> None:
        calls.append(attempt)
        raise TransientError(f"503 on try {attempt}")

    with pytest.raises(ModelLoadError) as raised:
        run_with_retries(
            operation, RetryPolicy(attempts=4), "fetching x", sleep=lambda _: None, random=lambda: 0
        )
    assert calls == [1, 2, 3, 4]
    assert str(raised.value) == "fetching x: giving up after 4 attempt(s): 503 on try 4"


def test_permanent_failures_are_not_retried() -> None:
    calls: list[int] = []

    def operation(attempt: int) -> None:
        calls.append(attempt)
        raise ModelLoadError("404 Not Found")

    with pytest.raises(ModelLoadError, match="404"):
        run_with_retries(
            operation, RetryPolicy(attempts=5), "x", sleep=lambda _: None, random=lambda: 0
        )
    assert calls == [1]
