"""The async batcher with a stand-in model function: merging, isolation, shedding."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sluice_runtime.batcher import Batcher
from sluice_runtime.batching import BatchPolicy
from sluice_runtime.errors import NotReady, QueueFull, SluiceError
from sluice_runtime.metrics import RuntimeMetrics

Array = np.ndarray[Any, Any]

pytestmark = pytest.mark.anyio


class Model:
    """Doubles its input; records batch sizes and the thread it ran on; can be held."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.threads: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.running = threading.Event()

    def __call__(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        self.running.set()
        self.gate.wait(10)
        x = inputs["x"]
        if (x < 0).any():
            raise RuntimeError("negative input")
        self.batches.append(x.shape[0])
        self.threads.add(threading.current_thread().name)
        return {"y": x * 2}


def metrics() -> RuntimeMetrics:
    return RuntimeMetrics(CollectorRegistry(), "m", "1")


def rows(value: float, count: int = 1) -> dict[str, Array]:
    return {"x": np.full((count, 2), value, dtype=np.float32)}


async def test_concurrent_requests_merge_and_each_gets_its_own_answer() -> None:
    model = Model()
    batcher = Batcher(model, BatchPolicy(64, max_delay=0.05, max_queue_size=100), metrics())
    batcher.start()
    answers = await asyncio.gather(
        *(batcher.submit(rows(i, 1 + i % 3), 1 + i % 3) for i in range(20))
    )
    await batcher.stop()
    for i, answer in enumerate(answers):
        np.testing.assert_array_equal(answer["y"], np.full((1 + i % 3, 2), 2.0 * i))
    assert sum(model.batches) == sum(1 + i % 3 for i in range(20))
    assert max(model.batches) > 3  # merged, not one by one
    assert model.threads
    assert threading.main_thread().name not in model.threads


async def test_one_bad_request_does_not_fail_its_neighbours() -> None:
    model = Model()
    batcher = Batcher(model, BatchPolicy(64, max_delay=0.05, max_queue_size=100), metrics())
    batcher.start()
    results = await asyncio.gather(
        batcher.submit(rows(1.0), 1),
        batcher.submit(rows(-1.0), 1),
        batcher.submit(rows(3.0), 1),
        return_exceptions=True,
    )
    await batcher.stop()
    assert isinstance(results[1], SluiceError)
    assert "inference failed: negative input" in str(results[1])
    np.testing.assert_array_equal(results[0]["y"], rows(2.0)["x"])  # type: ignore[index]
    np.testing.assert_array_equal(results[2]["y"], rows(6.0)["x"])  # type: ignore[index]


async def test_a_full_queue_refuses_at_once_while_the_model_is_busy() -> None:
    model = Model()
    model.gate.clear()
    batcher = Batcher(model, BatchPolicy(0, max_delay=0.0, max_queue_size=2), metrics())
    batcher.start()
    running = asyncio.create_task(batcher.submit(rows(1.0), 1))
    await asyncio.to_thread(model.running.wait, 10)  # the first request is inside the model
    queued = [asyncio.create_task(batcher.submit(rows(2.0), 1)) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(QueueFull, match="queue is full \\(2 waiting\\)"):
        await batcher.submit(rows(3.0), 1)
    model.gate.set()
    assert [a["y"][0, 0] for a in await asyncio.gather(running, *queued)] == [2.0, 4.0, 4.0]
    await batcher.stop()


async def test_the_queue_depth_gauge_reads_what_waits_behind_a_busy_model() -> None:
    model = Model()
    model.gate.clear()
    counted = metrics()
    batcher = Batcher(model, BatchPolicy(0, max_delay=0.0, max_queue_size=10), counted)
    batcher.start()
    running = asyncio.create_task(batcher.submit(rows(1.0), 1))
    await asyncio.to_thread(model.running.wait, 10)
    assert counted.queue_depth.value == 0  # the first request is in the model, not waiting
    queued = [asyncio.create_task(batcher.submit(rows(2.0), 1)) for _ in range(3)]
    await asyncio.sleep(0)
    assert counted.queue_depth.value == 3
    model.gate.set()
    await asyncio.gather(running, *queued)
    assert counted.queue_depth.value == 0
    await batcher.stop()


async def test_without_merging_every_request_runs_alone() -> None:
    model = Model()
    batcher = Batcher(model, BatchPolicy(0, max_delay=1.0, max_queue_size=100), metrics())
    batcher.start()
    await asyncio.gather(*(batcher.submit(rows(i, 2), 2) for i in range(5)))
    await batcher.stop()
    assert model.batches == [2] * 5


async def test_stop_finishes_queued_work_then_refuses_new_requests() -> None:
    model = Model()
    batcher = Batcher(model, BatchPolicy(4, max_delay=10.0, max_queue_size=100), metrics())
    batcher.start()
    pending = asyncio.create_task(batcher.submit(rows(5.0), 1))
    await asyncio.sleep(0)
    await batcher.stop()  # the 10 s deadline is not waited for
    assert (await pending)["y"][0, 0] == 10.0
    with pytest.raises(NotReady):
        await batcher.submit(rows(1.0), 1)


async def test_a_lone_request_runs_once_its_deadline_passes() -> None:
    model = Model()
    batcher = Batcher(model, BatchPolicy(8, max_delay=0.02, max_queue_size=100), metrics())
    batcher.start()
    answer = await asyncio.wait_for(batcher.submit(rows(4.0), 1), timeout=10)
    await batcher.stop()
    assert answer["y"][0, 0] == 8.0
    assert model.batches == [1]


async def test_stop_closes_the_pipes_to_the_model_thread_started_or_not() -> None:
    before = len(os.listdir("/proc/self/fd"))
    for start in (True, False):
        batcher = Batcher(Model(), BatchPolicy(0, max_delay=0.0, max_queue_size=4), metrics())
        if start:
            batcher.start()
            await batcher.submit(rows(1.0), 1)
        await batcher.stop()
    assert len(os.listdir("/proc/self/fd")) == before
