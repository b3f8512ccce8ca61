"""Bounded retries with capped exponential backoff and full jitter.

The arithmetic is pure and takes its random source and sleep as arguments, so
tests check the exact delays; `run_with_retries` is the only loop, shared by
every registry, so each one gives up after the same bounded effort.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sluice_runtime.errors import ModelLoadError

log = logging.getLogger(__name__)

T = TypeVar("T")


class TransientError(Exception):
    """A failure worth another try: a reset connection, a 5xx, throttling, a short body.

    `retry_after` carries a server's Retry-After hint in seconds. The message
    must already be free of credentials; it ends up in logs and errors.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many tries in all, and the backoff between them."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retry delays must not be negative")

    def delay(self, failures: int, random: Callable[[], float], retry_after: float | None) -> float:
        """Seconds to wait after the `failures`-th consecutive failure (1-based).

        Full jitter spreads many replicas that failed together across the whole
        window; a Retry-After hint is honoured up to the cap.
        """
        ceiling = min(self.max_delay, self.base_delay * self.multiplier ** (failures - 1))
        jittered = random() * ceiling
        if retry_after is not None:
            jittered = max(jittered, min(retry_after, self.max_delay))
        return jittered


def run_with_retries(
    operation: Callable[[int], T],
    policy: RetryPolicy,
    what: str,
    *,
    sleep: Callable[[float], None],
    random: Callable[[], float],
    on_retry: Callable[[], None] | None = None,
) -> T:
    """Call `operation(attempt)` until it returns, retrying only TransientError.

    Anything else (ModelLoadError for 401/403/404, bugs) propagates at once.
    After the last attempt the final transient reason becomes a ModelLoadError
    naming `what` and the number of attempts.
    """
    for attempt in range(1, policy.attempts + 1):
        try:
            return operation(attempt)
        except TransientError as exc:
            if attempt == policy.attempts:
                raise ModelLoadError(
                    f"{what}: giving up after {policy.attempts} attempt(s): {exc}"
                ) from exc
            wait = policy.delay(attempt, random, exc.retry_after)
            log.warning(
                "%s: attempt %d/%d failed (%s); retrying in %.2fs",
                what,
                attempt,
                policy.attempts,
                exc,
                wait,
            )
            if on_retry is not None:
                on_retry()
            sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
