"""grpc-timeout deadlines on one connection, kept by one timer for the earliest of them: a call
whose deadline comes first is ended first even when it started last, the timer moves on to
the next deadline after each, and a call answered in time is never ended by it."""

from __future__ import annotations

import asyncio

import pytest
from sluice_runtime.grpc.status import StatusCode
from sluice_runtime.h2.frames import Flag, FrameType
from sluice_runtime.h2.hpack_decoder import HeaderDecoder

from tests.unit.runtime.grpc_peer import Served, call, parse

pytestmark = pytest.mark.anyio


def statuses(served: Served) -> dict[int, int]:
    """grpc-status of every call the connection has ended so far, by stream id."""
    decoder = HeaderDecoder()
    ended: dict[int, int] = {}
    for send in served.transport.sends:
        for frame in parse(send):
            if frame.type != FrameType.HEADERS:
                continue
            fields = dict(decoder.decode(frame.payload))
            if frame.flags & Flag.END_STREAM:
                ended[frame.stream_id] = int(fields[b"grpc-status"])
    return ended


async def until(served: Served, stream_id: int) -> dict[int, int]:
    """Wait until the connection has ended `stream_id`; its sends so far, as statuses."""
    while stream_id not in statuses(served):
        served.transport.sent.clear()
        await asyncio.wait_for(served.transport.sent.wait(), timeout=5)
    return statuses(served)


async def test_a_shorter_deadline_started_later_ends_its_call_first() -> None:
    served = Served()
    served.protocol.data_received(call(1, timeout="60S"))
    served.protocol.data_received(call(3, timeout="30m"))
    ended = await until(served, 3)
    assert ended == {3: StatusCode.DEADLINE_EXCEEDED}
    assert served.answer(3).cancelled()  # its work is stopped, not left running
    served.answer(1).set_result(b"answer")
    assert (await until(served, 1))[1] == StatusCode.OK


async def test_after_one_deadline_the_timer_waits_for_the_next() -> None:
    served = Served()
    served.protocol.data_received(call(1, timeout="20m") + call(3, timeout="60m"))
    first = await until(served, 1)
    assert first == {1: StatusCode.DEADLINE_EXCEEDED}
    assert (await until(served, 3))[3] == StatusCode.DEADLINE_EXCEEDED


async def test_a_call_answered_in_time_is_not_ended_and_later_deadlines_still_hold() -> None:
    served = Served()
    served.protocol.data_received(call(1, timeout="20m"))
    served.answer(1).set_result(b"answer")
    assert (await until(served, 1))[1] == StatusCode.OK
    served.protocol.data_received(call(3, timeout="40m"))
    ended = await until(served, 3)  # the timer armed for call 1 fired with nothing due
    assert ended == {1: StatusCode.OK, 3: StatusCode.DEADLINE_EXCEEDED}
