"""When the gRPC connection acknowledges a client's PING: with the next answer while a call
runs (one send instead of two), on its own after PING_ACK_HOLD if no answer comes, and at
once when no call is open. The protocol is driven with bytes and its sends are recorded: the
frame logic under test does no I/O of its own."""

from __future__ import annotations

import asyncio

import pytest
from sluice_runtime.h2 import frames
from sluice_runtime.h2.frames import Flag, FrameType

from tests.unit.runtime.grpc_peer import Served, call, kinds

pytestmark = pytest.mark.anyio

PING_PAYLOAD = b"bdp-1234"


def ping(flags: int = 0) -> bytes:
    return frames.frame(FrameType.PING, flags, 0, PING_PAYLOAD)


ACK = (FrameType.PING, Flag.ACK)
ANSWER = [(FrameType.HEADERS, Flag.END_HEADERS), (FrameType.DATA, 0),
          (FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM)]  # fmt: skip


async def test_a_ping_that_arrives_with_a_call_leaves_in_the_same_send_as_its_answer() -> None:
    served = Served()
    served.protocol.data_received(ping() + call(1))
    assert served.transport.sends == []  # held: the call is running
    served.answer(1).set_result(b"answer")
    await served.transport.sent.wait()
    assert [kinds(send) for send in served.transport.sends] == [[ACK, *ANSWER]]
    ack = frames.split_frames(served.transport.sends[0], frames.MAX_FRAME_LIMIT)[0][0]
    assert ack.payload == PING_PAYLOAD


async def test_a_held_acknowledgement_leaves_on_its_own_when_no_answer_comes() -> None:
    served = Served()
    served.protocol.data_received(call(1) + ping())
    assert served.transport.sends == []
    await asyncio.wait_for(served.transport.sent.wait(), timeout=5)  # PING_ACK_HOLD later
    assert [kinds(send) for send in served.transport.sends] == [[ACK]]
    served.answer(1).set_result(b"answer")
    served.transport.sent.clear()
    await served.transport.sent.wait()
    assert [kinds(send) for send in served.transport.sends[1:]] == [ANSWER]


@pytest.mark.parametrize("flags", [0, Flag.ACK])
async def test_a_ping_with_no_call_open_is_answered_at_once_and_an_ack_never(flags: int) -> None:
    served = Served()
    served.protocol.data_received(ping(flags))
    assert [kinds(send) for send in served.transport.sends] == ([[ACK]] if flags == 0 else [])
