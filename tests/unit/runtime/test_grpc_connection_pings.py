"""When the gRPC connection acknowledges a client's PING: with the next answer while a call
runs (one send instead of two), on its own after PING_ACK_HOLD if no answer comes, and at
once when no call is open. The protocol is driven with bytes and its sends are recorded: the
frame logic under test does no I/O of its own."""

from __future__ import annotations

import asyncio
from typing import Any

import hpack
import pytest
from sluice_runtime.grpc import connection, wire
from sluice_runtime.h2 import frames
from sluice_runtime.h2.frames import Flag, FrameType

pytestmark = pytest.mark.anyio

PATH = "/test.Service/Call"
PING_PAYLOAD = b"bdp-1234"


class RecordingTransport(asyncio.Transport):
    """Keeps each write as one send, as the socket would get it."""

    def __init__(self) -> None:
        super().__init__()
        self.sends: list[bytes] = []
        self.sent = asyncio.Event()

    def write(self, data: Any) -> None:
        self.sends.append(bytes(data))
        self.sent.set()

    def close(self) -> None:
        pass


def kinds(send: bytes) -> list[tuple[int, int]]:
    parsed, used = frames.split_frames(send, frames.MAX_FRAME_LIMIT)
    assert used == len(send)
    return [(f.type, f.flags) for f in parsed]


def ping(flags: int = 0) -> bytes:
    return frames.frame(FrameType.PING, flags, 0, PING_PAYLOAD)


def call(stream_id: int) -> bytes:
    block = hpack.Encoder().encode(
        [(":method", "POST"), (":scheme", "http"), (":path", PATH),
         (":authority", "x"), ("content-type", "application/grpc"), ("te", "trailers")]
    )  # fmt: skip
    message = wire.frame_message(b"question")
    return frames.frame(FrameType.HEADERS, Flag.END_HEADERS, stream_id, block) + frames.frame(
        FrameType.DATA, Flag.END_STREAM, stream_id, message
    )


class Served:
    """A connection whose one method answers when the test says so."""

    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        methods = {PATH: connection.Method(unary=self._unary)}
        self.protocol = connection.GrpcConnection(
            methods, connection.Limits(max_message_bytes=1 << 20), lambda _: None
        )
        self.transport = RecordingTransport()
        self.protocol.connection_made(self.transport)
        self.protocol.data_received(frames.PREFACE + frames.settings({}))
        self.transport.sends.clear()  # our SETTINGS, and the ACK of the client's
        self.transport.sent.clear()

    async def _unary(self, message: bytes, head: wire.RequestHead) -> bytes:
        assert message == b"question"
        return await self.answer


ACK = (FrameType.PING, Flag.ACK)
ANSWER = [(FrameType.HEADERS, Flag.END_HEADERS), (FrameType.DATA, 0),
          (FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM)]  # fmt: skip


async def test_a_ping_that_arrives_with_a_call_leaves_in_the_same_send_as_its_answer() -> None:
    served = Served()
    served.protocol.data_received(ping() + call(1))
    assert served.transport.sends == []  # held: the call is running
    served.answer.set_result(b"answer")
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
    served.answer.set_result(b"answer")
    served.transport.sent.clear()
    await served.transport.sent.wait()
    assert [kinds(send) for send in served.transport.sends[1:]] == [ANSWER]


@pytest.mark.parametrize("flags", [0, Flag.ACK])
async def test_a_ping_with_no_call_open_is_answered_at_once_and_an_ack_never(flags: int) -> None:
    served = Served()
    served.protocol.data_received(ping(flags))
    assert [kinds(send) for send in served.transport.sends] == ([[ACK]] if flags == 0 else [])
