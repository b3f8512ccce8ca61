"""The async side of batching: queue requests, run due batches off the event loop, answer.

One worker task asks the pure `BatchQueue` what is due, merges it, runs the model
once in a thread (onnxruntime releases the GIL, so the loop keeps serving), splits
the answer and resolves each request's future. While a batch runs, new requests
gather in the queue and form the next one: batches grow with load by themselves.
"""

from __future__ import annotations

import asyncio
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

# uvloop's timers count whole milliseconds: a shorter sleep returns at once.
TIMER_TICK = 0.001


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
        self._waiter: asyncio.Future[None] | None = None
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
        self._wake()
        return await future

    async def stop(self) -> None:
        """Finish what is queued, then stop the worker and its thread."""
        self._closed = True
        self._wake()
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
                await self._sleep(max(due, TIMER_TICK))
            else:
                batch = self._queue.take()
                self._metrics.queue_depth.set(len(self._queue))
                now = self._clock()
                for pending in batch:
                    self._metrics.queue_seconds.observe(now - pending.enqueued_at)
                await self._run(batch)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _sleep(self, seconds: float | None) -> None:
        """Wait until a request arrives or `seconds` pass, whichever comes first.

        A bare future and a timer handle: far cheaper per wake-up than `wait_for`.
        """
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        timer = None if seconds is None else loop.call_later(seconds, self._wake)
        try:
            await self._waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def _run(self, batch: list[Pending[_Job]]) -> None:
        """Run a taken batch in the model thread: merged, or each request alone.

        Unmerged requests taken together still run one by one, but cross into the thread
        once, and each answer is posted back the moment its run ends.
        """
        runs = [batch] if self._queue.policy.merging else [[pending] for pending in batch]
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._execute, runs, loop)

    def _execute(self, runs: list[list[Pending[_Job]]], loop: asyncio.AbstractEventLoop) -> None:
        for run in runs:
            self._execute_run(run, loop)

    def _execute_run(self, run: list[Pending[_Job]], loop: asyncio.AbstractEventLoop) -> None:
        # In the model thread: touch futures only through the loop.
        started = self._clock()
        try:
            outputs = self._run_model(merge([pending.item.inputs for pending in run]))
            answers = split(outputs, [pending.rows for pending in run])
        except Exception as error:
            if len(run) == 1:
                loop.call_soon_threadsafe(_fail, run[0].item.future, _as_sluice_error(error))
                return
            # Validation keeps bad requests out, but if a merged run still fails, run each
            # request alone so only the one at fault sees the error.
            log.warning("batch of %d failed (%s); running its requests one by one", len(run), error)
            for pending in run:
                self._execute_run([pending], loop)
            return
        self._metrics.inference_seconds.observe(self._clock() - started)
        self._metrics.batch_size.observe(len(run))
        loop.call_soon_threadsafe(_answer, run, answers)


def _as_sluice_error(error: Exception) -> SluiceError:
    if isinstance(error, SluiceError):
        return error
    return SluiceError(f"inference failed: {error}")


def _answer(run: list[Pending[_Job]], answers: list[dict[str, Array]]) -> None:
    for pending, answer in zip(run, answers, strict=True):
        # A client that went away cancelled its future; its answer has nowhere to go.
        if not pending.item.future.done():
            pending.item.future.set_result(answer)


def _fail(future: asyncio.Future[dict[str, Array]], error: SluiceError) -> None:
    if not future.done():
        future.set_exception(error)
