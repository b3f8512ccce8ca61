"""The async side of batching: queue requests, run due batches off the event loop, answer.

One worker task asks the pure `BatchQueue` what is due, merges it, runs the model
once in a thread (onnxruntime releases the GIL, so the loop keeps serving), splits
the answer and resolves each request's future. While a batch runs, new requests
gather in the queue and form the next one: batches grow with load by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sluice_runtime.batching import BatchPolicy, BatchQueue, Pending, merge, merge_key, split
from sluice_runtime.errors import NotReady, QueueFull, SluiceError
from sluice_runtime.metrics import RuntimeMetrics

log = logging.getLogger(__name__)

Array = np.ndarray[Any, Any]
Runner = Callable[[Mapping[str, Array]], dict[str, Array]]


@dataclass(slots=True)
class _Job:
    inputs: dict[str, Array]
    future: asyncio.Future[dict[str, Array]] = field(repr=False)


class Batcher:
    """Serialises model runs through a bounded queue, merging requests when the policy says."""

    def __init__(
        self,
        run: Runner,
        policy: BatchPolicy,
        metrics: RuntimeMetrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._run_model = run
        self._queue: BatchQueue[_Job] = BatchQueue(policy)
        self._metrics = metrics
        self._clock = clock
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sluice-model")
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        """Start the worker on the running loop."""
        self._worker = asyncio.get_running_loop().create_task(self._work(), name="batcher")

    async def submit(self, inputs: dict[str, Array], rows: int) -> dict[str, Array]:
        """Queue one validated request and wait for its slice of a batch's outputs."""
        if self._closed:
            raise NotReady("the runtime is shutting down")
        future: asyncio.Future[dict[str, Array]] = asyncio.get_running_loop().create_future()
        job = _Job(inputs, future)
        if not self._queue.offer(job, rows, merge_key(inputs), self._clock()):
            raise QueueFull(
                f"the request queue is full ({self._queue.policy.max_queue_size} waiting); "
                "retry later"
            )
        self._metrics.queue_depth.set(len(self._queue))
        self._wake.set()
        return await future

    async def stop(self) -> None:
        """Finish what is queued, then stop the worker and its thread."""
        self._closed = True
        self._wake.set()
        if self._worker is not None:
            await self._worker
        self._executor.shutdown(wait=True)

    async def _work(self) -> None:
        while True:
            due = self._queue.due_in(self._clock())
            if due is None:
                if self._closed:
                    return
                await self._sleep(None)
            elif due > 0 and not self._closed:
                await self._sleep(due)
            else:
                batch = self._queue.take()
                self._metrics.queue_depth.set(len(self._queue))
                now = self._clock()
                for pending in batch:
                    self._metrics.queue_seconds.observe(now - pending.enqueued_at)
                await self._run(batch)

    async def _sleep(self, seconds: float | None) -> None:
        """Wait until a request arrives or `seconds` pass, whichever comes first."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _run(self, batch: list[Pending[_Job]]) -> None:
        try:
            answers = await self._infer(batch)
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0].item.future, error=_as_sluice_error(error))
                return
            # Validation keeps bad requests out, but if a merged run still fails, run each
            # request alone so only the one at fault sees the error.
            log.warning(
                "batch of %d failed (%s); running its requests one by one", len(batch), error
            )
            for pending in batch:
                await self._run([pending])
            return
        for pending, answer in zip(batch, answers, strict=True):
            _settle(pending.item.future, result=answer)

    async def _infer(self, batch: list[Pending[_Job]]) -> list[dict[str, Array]]:
        merged = merge([pending.item.inputs for pending in batch])
        loop = asyncio.get_running_loop()
        started = self._clock()
        outputs = await loop.run_in_executor(self._executor, self._run_model, merged)
        self._metrics.inference_seconds.observe(self._clock() - started)
        self._metrics.batch_size.observe(len(batch))
        return split(outputs, [pending.rows for pending in batch])


def _as_sluice_error(error: Exception) -> SluiceError:
    if isinstance(error, SluiceError):
        return error
    return SluiceError(f"inference failed: {error}")


def _settle(
    future: asyncio.Future[dict[str, Array]],
    *,
    result: dict[str, Array] | None = None,
    error: SluiceError | None = None,
) -> None:
    # A client that went away cancelled its future; its answer has nowhere to go.
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert result is not None
        future.set_result(result)
