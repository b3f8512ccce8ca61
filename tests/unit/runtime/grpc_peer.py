"""A gRPC client's side of one connection, as bytes, for the connection's unit tests.

The connection (sluice_runtime.grpc.connection) is driven with the frames a client would send
and its sends are recorded; its one method answers each call when the test resolves that
call's future. Nothing here does I/O.
"""

from __future__ import annotations

import asyncio
from typing import Any

import hpack
from sluice_runtime.grpc import connection, wire
from sluice_runtime.h2 import frames
from sluice_runtime.h2.frames import Flag, FrameType

PATH = "/test.Service/Call"
CALL_HEADER = "x-call"  # metadata naming the call, so the method knows whose answer to wait for


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


def parse(send: bytes) -> list[frames.Frame]:
    parsed, used = frames.split_frames(send, frames.MAX_FRAME_LIMIT)
    assert used == len(send)
    return parsed


def kinds(send: bytes) -> list[tuple[int, int]]:
    return [(f.type, f.flags) for f in parse(send)]


def call(stream_id: int, timeout: str | None = None) -> bytes:
    """A whole unary call on `stream_id`: its headers (grpc-timeout if given) and message."""
    headers = [(":method", "POST"), (":scheme", "http"), (":path", PATH), (":authority", "x"),
               ("content-type", "application/grpc"), ("te", "trailers"),
               (CALL_HEADER, str(stream_id))]  # fmt: skip
    if timeout is not None:
        headers.append(("grpc-timeout", timeout))
    block = hpack.Encoder().encode(headers)
    message = wire.frame_message(b"question")
    return frames.frame(FrameType.HEADERS, Flag.END_HEADERS, stream_id, block) + frames.frame(
        FrameType.DATA, Flag.END_STREAM, stream_id, message
    )


class Served:
    """A connection whose method answers call N when `answers[N]` is resolved."""

    def __init__(self) -> None:
        self.answers: dict[int, asyncio.Future[bytes]] = {}
        methods = {PATH: connection.Method(unary=self._unary)}
        self.protocol = connection.GrpcConnection(
            methods, connection.Limits(max_message_bytes=1 << 20), lambda _: None
        )
        self.transport = RecordingTransport()
        self.protocol.connection_made(self.transport)
        self.protocol.data_received(frames.PREFACE + frames.settings({}))
        self.transport.sends.clear()  # our SETTINGS, and the ACK of the client's
        self.transport.sent.clear()

    def answer(self, stream_id: int) -> asyncio.Future[bytes]:
        if stream_id not in self.answers:
            self.answers[stream_id] = asyncio.get_running_loop().create_future()
        return self.answers[stream_id]

    async def _unary(self, message: bytes, head: wire.RequestHead) -> bytes:
        assert message == b"question"
        return await self.answer(int(head.metadata[CALL_HEADER]))
