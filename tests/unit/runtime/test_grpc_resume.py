"""Resumed: a started coroutine run on by its futures' callbacks, cancelled as a Task would be."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sluice_runtime.grpc.resume import Resumed

pytestmark = pytest.mark.anyio


def start(loop: asyncio.AbstractEventLoop, coroutine: Any) -> Resumed:
    """What the connection does: run to the first suspension, then hand over."""
    return Resumed(loop, coroutine, coroutine.send(None))


async def test_runs_on_when_the_awaited_future_is_done() -> None:
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()
    seen: list[Any] = []

    async def call() -> None:
        seen.append(await first)
        seen.append(await second)

    resumed = start(loop, call())
    assert not resumed.done()
    first.set_result("a")
    await asyncio.sleep(0)
    assert seen == ["a"]
    assert not resumed.done()
    second.set_result("b")
    await asyncio.sleep(0)
    assert seen == ["a", "b"]
    assert resumed.done()


async def test_an_exception_of_the_future_is_raised_in_the_coroutine() -> None:
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    caught: list[BaseException] = []

    async def call() -> None:
        try:
            await future
        except ValueError as error:
            caught.append(error)

    resumed = start(loop, call())
    future.set_exception(ValueError("bad"))
    await asyncio.sleep(0)
    assert [str(error) for error in caught] == ["bad"]
    assert resumed.done()


async def test_cancel_cancels_the_awaited_future_and_delivers_the_message() -> None:
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    messages: list[Any] = []

    async def call() -> None:
        try:
            await future
        except asyncio.CancelledError as cancelled:
            messages.append(cancelled.args)

    resumed = start(loop, call())
    resumed.cancel("DEADLINE_EXCEEDED")
    assert future.cancelled()  # the batcher sees nobody wants the answer
    await asyncio.sleep(0)
    assert messages == [("DEADLINE_EXCEEDED",)]
    assert resumed.done()


async def test_cancel_after_the_result_arrived_still_wins_over_the_result() -> None:
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    outcome: list[Any] = []

    async def call() -> None:
        try:
            outcome.append(await future)
        except asyncio.CancelledError as cancelled:
            outcome.append(cancelled.args)

    resumed = start(loop, call())
    future.set_result("answer")  # its callback is scheduled, not run yet
    resumed.cancel("CANCELLED")
    await asyncio.sleep(0)
    assert outcome == [("CANCELLED",)]
    assert resumed.done()


async def test_a_bare_yield_lets_the_loop_turn_then_continues() -> None:
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    order: list[str] = []

    async def call() -> None:
        await future
        await asyncio.sleep(0)
        order.append("after the yield")

    resumed = start(loop, call())
    future.set_result(None)
    loop.call_soon(order.append, "other callback")
    for _ in range(3):
        await asyncio.sleep(0)
    # The bare yield let the callback queued behind the wake-up run first.
    assert order == ["other callback", "after the yield"]
    assert resumed.done()


async def test_cancel_of_a_finished_call_does_nothing() -> None:
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    async def call() -> None:
        await future

    resumed = start(loop, call())
    future.set_result(None)
    await asyncio.sleep(0)
    resumed.cancel("CANCELLED")
    assert resumed.done()


async def test_a_yield_that_is_not_a_future_is_refused() -> None:
    loop = asyncio.get_running_loop()

    class Odd:
        def __await__(self) -> Any:
            yield "not a future"

    async def call() -> None:
        await Odd()

    coroutine = call()
    with pytest.raises(RuntimeError, match="not an asyncio future"):
        start(loop, coroutine)
