"""Dynamic batching arithmetic: which waiting requests run together, when, and how.

Pure: the clock is an argument (`now`), never read here, so the deadline logic is
tested to the microsecond without sleeping. The async side (`batcher.py`) only
asks this module "how long until something is due?" and "what runs now?".
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

Array = np.ndarray[Any, Any]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """How requests are merged.

    `max_batch_size` counts rows (the first dimension) per model run; 0 turns merging
    off, so every request runs alone as soon as the model is free. `max_delay` is how
    long, in seconds, the oldest waiting request may wait for others to join it.
    `max_queue_size` bounds the requests waiting, past which new ones are refused.
    A deadline less than `tolerance` away counts as reached: event-loop timers tick in
    whole milliseconds, and waiting for less than a tick would spin, not sleep.
    """

    max_batch_size: int
    max_delay: float
    max_queue_size: int
    tolerance: float = 0.0

    @property
    def merging(self) -> bool:
        """Whether requests are merged at all."""
        return self.max_batch_size > 0


@dataclass(slots=True)
class Pending(Generic[T]):
    """A waiting request: `rows` along dimension 0, and the `key` it must share to merge.

    Not frozen: a frozen dataclass pays an `object.__setattr__` call per field, and one
    of these is made per request.
    """

    item: T
    rows: int
    key: Hashable
    enqueued_at: float


def merge_key(inputs: Mapping[str, Array]) -> Hashable:
    """Requests merge only when every input agrees beyond dimension 0 (and in dtype)."""
    # The dtype itself, not its `.str`: equal dtypes hash alike, and `.str` builds a string.
    return tuple([(name, array.shape[1:], array.dtype) for name, array in inputs.items()])


class BatchQueue(Generic[T]):
    """A bounded FIFO of pending requests with the batching rules of one policy."""

    def __init__(self, policy: BatchPolicy) -> None:
        self.policy = policy
        self._merging = policy.merging  # read per request: a plain attribute, not a property
        self._waiting: deque[Pending[T]] = deque()

    def __len__(self) -> int:
        return len(self._waiting)

    def offer(self, item: T, rows: int, key: Hashable, now: float) -> bool:
        """Queue a request; False (and nothing queued) when the queue is already full."""
        if len(self._waiting) >= self.policy.max_queue_size:
            return False
        self._waiting.append(Pending(item, rows, key, now))
        return True

    def due_in(self, now: float) -> float | None:
        """Seconds until a batch is due: None when nothing waits, 0.0 when one is due now.

        A batch is due when the requests that can join the oldest one fill the max batch
        size, or when the oldest one has waited `max_delay`.
        """
        if not self._waiting:
            return None
        head = self._waiting[0]
        if not self._merging or self._joinable_rows(head) >= self.policy.max_batch_size:
            return 0.0
        remaining = head.enqueued_at + self.policy.max_delay - now
        return 0.0 if remaining <= self.policy.tolerance else remaining

    def take(self) -> list[Pending[T]]:
        """Remove and return the next batch: the oldest request and, in order, every later
        one with the same key that still fits in the max batch size.

        The oldest request always runs, even alone past the max batch size, so an
        oversized request is served on its own rather than starved or refused. Without
        merging, everything waiting is taken, for the caller to run one by one.
        """
        if not self._merging:
            return self.drain()
        if not self._waiting:
            return []
        head = self._waiting.popleft()
        batch = [head]
        rows = head.rows
        kept: deque[Pending[T]] = deque()
        while self._waiting and rows < self.policy.max_batch_size:
            pending = self._waiting.popleft()
            if pending.key == head.key and rows + pending.rows <= self.policy.max_batch_size:
                batch.append(pending)
                rows += pending.rows
            else:
                kept.append(pending)
        kept.extend(self._waiting)
        self._waiting = kept
        return batch

    def drain(self) -> list[Pending[T]]:
        """Remove and return everything still waiting (shutdown)."""
        waiting = list(self._waiting)
        self._waiting.clear()
        return waiting

    def _joinable_rows(self, head: Pending[T]) -> int:
        rows = 0
        for pending in self._waiting:
            if pending.key == head.key:
                rows += pending.rows
                if rows >= self.policy.max_batch_size:
                    break
        return rows


def merge(parts: Sequence[dict[str, Array]]) -> dict[str, Array]:
    """Concatenate each input along dimension 0; a single request passes through as it is."""
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def split(outputs: dict[str, Array], rows: Sequence[int]) -> list[dict[str, Array]]:
    """Cut each output back into per-request slices of `rows` along dimension 0.

    ValueError when an output's first dimension is not the batch's total rows: such a
    model cannot be batched, and answering with wrong slices would be worse than failing.
    """
    if len(rows) == 1:
        return [outputs]
    total = sum(rows)
    for name, array in outputs.items():
        if array.ndim == 0 or array.shape[0] != total:
            raise ValueError(
                f"output {name!r} has shape {list(array.shape)}, not {total} rows along "
                "dimension 0; this model's outputs cannot be split into per-request answers"
            )
    bounds = np.cumsum(rows)[:-1]
    pieces = {name: np.split(array, bounds) for name, array in outputs.items()}
    return [{name: pieces[name][index] for name in outputs} for index in range(len(rows))]
