"""One client's HTTP/2 connection serving gRPC calls: an asyncio protocol on the event loop.

Why our own HTTP/2 rather than grpcio's server: grpc.aio spends about 0.37 ms of CPU per
call before any work is done (its completion-queue thread hands every call to the loop),
more than Sluice's whole REST path; this protocol spends about 0.03 ms (bench/results/
optimizations.md). It implements what unary and server-streaming calls need, by RFC 9113:
SETTINGS, PING, flow control both ways, CONTINUATION, RST_STREAM, GOAWAY for draining,
max concurrent streams and a per-message size limit. Headers are decoded by h2/hpack_decoder.py;
responses use stateless literal blocks built ahead of time (wire.py).

Each call runs from the request's last frame on (unary calls without a Task, resume.py;
streaming calls as a task); a deadline (grpc-timeout), a client's RST_STREAM or a lost
connection cancels it. Writes made in one turn of the loop go out in one send, and a client's
PING that arrives while calls run is acknowledged in the send of the next answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import cast

from sluice_runtime.grpc import wire
from sluice_runtime.grpc.resume import Resumed
from sluice_runtime.grpc.status import GrpcError, StatusCode
from sluice_runtime.h2 import frames
from sluice_runtime.h2.frames import ErrorCode, Flag, FrameType, Setting
from sluice_runtime.h2.hpack_decoder import HeaderDecoder

log = logging.getLogger(__name__)

Unary = Callable[[bytes, wire.RequestHead], Awaitable[bytes]]
ServerStream = Callable[[bytes, wire.RequestHead], AsyncIterator[bytes]]

RECEIVE_WINDOW = 1 << 24  # per stream and per connection: big tensors need few updates
MAX_FRAME = 1 << 20  # what we accept; fewer, bigger frames for big tensors
MAX_HEADER_BLOCK = 1 << 16
# How long a PING's acknowledgement may wait for an answer to ride with. Clients ping with
# nearly every answer they read (grpc-go's and gRPC core's bandwidth estimators), and the
# ping comes in with their next call: acknowledged on its own it costs a TCP send per call.
PING_ACK_HOLD = 0.002
DEADLINE_TICK = 0.001  # uvloop's timer resolution


@dataclass(frozen=True, slots=True)
class Method:
    """A served method: `unary` answers once, `stream` yields any number of messages."""

    unary: Unary | None = None
    stream: ServerStream | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """What one connection accepts."""

    max_message_bytes: int
    max_concurrent_streams: int = 1024


class _Stream:
    """One call's state, from its headers until its last byte is written."""

    __slots__ = (
        "answered", "body", "body_size", "deadline", "head", "id", "pending", "received",
        "send_window", "streaming", "task", "trailer",
    )  # fmt: skip

    def __init__(self, stream_id: int, head: wire.RequestHead, send_window: int) -> None:
        self.id = stream_id
        self.head = head
        self.body: list[bytes] = []  # DATA payloads, joined once the request is complete
        self.body_size = 0
        self.task: Resumed | asyncio.Task[None] | None = None  # the running call
        self.deadline: float | None = None  # loop time by which it must be answered
        self.send_window = send_window
        self.pending = bytearray()  # DATA payload waiting for flow-control credit
        self.trailer: bytes | None = None  # the closing header block, sent after `pending`
        self.received = 0  # DATA bytes since our last WINDOW_UPDATE for this stream
        self.answered = False
        self.streaming = False


class GrpcConnection(asyncio.Protocol):
    """HTTP/2 server side of one TCP connection, dispatching calls to `methods` by path."""

    def __init__(
        self,
        methods: Mapping[str, Method],
        limits: Limits,
        on_closed: Callable[[GrpcConnection], None],
    ) -> None:
        self._methods = methods
        self._limits = limits
        self._on_closed = on_closed
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._preface = False
        self._decoder = HeaderDecoder(max_list_size=MAX_HEADER_BLOCK)
        self._streams: dict[int, _Stream] = {}
        self._last_stream_id = 0
        self._continuation: tuple[int, int, list[bytes]] | None = None
        self._send_window = frames.DEFAULT_WINDOW
        self._peer_initial_window = frames.DEFAULT_WINDOW
        self._peer_max_frame = frames.DEFAULT_MAX_FRAME
        self._received = 0  # DATA bytes since our last connection WINDOW_UPDATE
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._receiving = False  # inside data_received, which flushes when it is done
        self._ping_acks: list[bytes] = []  # held while calls run: they leave with an answer
        self._ping_timer: asyncio.TimerHandle | None = None
        # One timer for the earliest deadline of the open calls, not one per call: calls
        # with the same grpc-timeout end in the order they start, so a call nearly never
        # moves the earliest deadline and costs no timer of its own.
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._deadline_at = 0.0
        self._going_away = False
        self.closed = self._loop.create_future()

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._transport = transport
        announce = {
            Setting.MAX_CONCURRENT_STREAMS: self._limits.max_concurrent_streams,
            Setting.INITIAL_WINDOW_SIZE: RECEIVE_WINDOW,
            Setting.MAX_FRAME_SIZE: MAX_FRAME,
            Setting.MAX_HEADER_LIST_SIZE: MAX_HEADER_BLOCK,
            Setting.ENABLE_PUSH: 0,
        }
        grow = RECEIVE_WINDOW - frames.DEFAULT_WINDOW
        transport.write(frames.settings(announce) + frames.window_update(0, grow))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._receiving = True
        try:
            self._receive()
        except frames.ConnectionFailure as error:
            self._fail(error.code, error.message)
        finally:
            self._receiving = False
        if self._ping_acks and self._streams and not self._out:
            # Nothing else to send now: the acknowledgement waits for the next answer.
            if self._ping_timer is None:
                self._ping_timer = self._loop.call_later(PING_ACK_HOLD, self._flush)
            return
        self._flush()

    def _receive(self) -> None:
        buffer = self._buffer
        if not self._preface:
            if len(buffer) < len(frames.PREFACE):
                if not frames.PREFACE.startswith(bytes(buffer)):
                    raise frames.ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "not HTTP/2")
                return
            if buffer[: len(frames.PREFACE)] != frames.PREFACE:
                raise frames.ConnectionFailure(
                    ErrorCode.PROTOCOL_ERROR, "not an HTTP/2 connection preface"
                )
            del buffer[: len(frames.PREFACE)]
            self._preface = True
        received, used = frames.split_frames(buffer, MAX_FRAME)
        del buffer[:used]
        for frame in received:
            self._on_frame(frame)

    def pause_writing(self) -> None:
        # A client that does not read its answers stops being read from.
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        for stream in self._streams.values():
            self._cancel(stream)
        self._streams.clear()
        self._transport = None
        if self._ping_timer is not None:
            self._ping_timer.cancel()
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
        if not self.closed.done():
            self.closed.set_result(None)
        self._on_closed(self)

    # -- draining --------------------------------------------------------------------------

    def go_away(self) -> None:
        """Refuse new calls (GOAWAY), end streaming calls, close once unary calls finish."""
        if self._going_away or self._transport is None:
            return
        self._going_away = True
        self._write(frames.goaway(self._last_stream_id, ErrorCode.NO_ERROR, "server draining"))
        for stream in list(self._streams.values()):
            if stream.streaming and not stream.answered:
                self._cancel(stream)
                self._answer_error(stream, StatusCode.UNAVAILABLE, "the server is shutting down")
        self._close_if_idle()

    def abort(self) -> None:
        """Close now, whatever is still running (the drain period is over)."""
        if self._transport is not None:
            self._flush()
            self._transport.close()

    # -- frames ------------------------------------------------------------------------------

    def _on_frame(self, frame: frames.Frame) -> None:
        kind = frame.type
        if self._continuation is not None and kind != FrameType.CONTINUATION:
            raise frames.ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "header block interrupted")
        if kind == FrameType.DATA:
            self._on_data(frame)
        elif kind == FrameType.HEADERS:
            self._on_headers(frame)
        elif kind == FrameType.CONTINUATION:
            self._on_continuation(frame)
        elif kind == FrameType.WINDOW_UPDATE:
            self._on_window_update(frame)
        elif kind == FrameType.SETTINGS:
            self._on_settings(frame)
        elif kind == FrameType.PING:
            if frame.stream_id or len(frame.payload) != 8:
                raise frames.ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "malformed PING")
            if not frame.flags & Flag.ACK:
                self._ping_acks.append(frames.frame(FrameType.PING, Flag.ACK, 0, frame.payload))
        elif kind == FrameType.RST_STREAM:
            frames.error_code(frame.payload)
            if frame.stream_id == 0:
                raise frames.ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0")
            stream = self._streams.pop(frame.stream_id, None)
            if stream is not None:
                self._cancel(stream)
                self._close_if_idle()
        elif kind == FrameType.PUSH_PROMISE:
            raise frames.ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "clients cannot push")
        elif kind == FrameType.PRIORITY and len(frame.payload) != 5:
            raise frames.ConnectionFailure(ErrorCode.FRAME_SIZE_ERROR, "PRIORITY is not 5 bytes")
        # PRIORITY is advisory, GOAWAY from a client only says it opens no more calls, and
        # unknown frame types must be ignored (RFC 9113 §4.1).

    def _on_data(self, frame: frames.Frame) -> None:
        size = len(frame.payload)
        self._received += size
        if self._received >= RECEIVE_WINDOW // 2:
            self._write(frames.window_update(0, self._received))
            self._received = 0
        stream = self._streams.get(frame.stream_id)
        if stream is None or stream.task is not None or stream.answered:
            if frame.stream_id == 0 or frame.stream_id > self._last_stream_id:
                raise frames.ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "DATA on an idle stream")
            return  # a stream we reset or answered early: its late data is dropped
        payload = frames.strip_padding(frame.flags, frame.payload)
        stream.body.append(payload)
        stream.body_size += len(payload)
        if stream.body_size > self._limits.max_message_bytes + 5:
            self._answer_error(
                stream,
                StatusCode.RESOURCE_EXHAUSTED,
                f"request message larger than the limit of {self._limits.max_message_bytes} "
                "bytes (--max-request-bytes)",
            )
            self._write(frames.rst_stream(stream.id, ErrorCode.NO_ERROR))
            return
        if frame.flags & Flag.END_STREAM:
            self._dispatch(stream)
            return
        stream.received += size
        if stream.received >= RECEIVE_WINDOW // 2:
            self._write(frames.window_update(stream.id, stream.received))
            stream.received = 0

    def _on_headers(self, frame: frames.Frame) -> None:
        stream_id = frame.stream_id
        if stream_id == 0 or stream_id % 2 == 0:
            raise frames.ConnectionFailure(ErrorCode.PROTOCOL_ERROR, f"bad stream id {stream_id}")
        fragment = frames.header_block_fragment(frame.flags, frame.payload)
        if frame.flags & Flag.END_HEADERS:
            self._on_header_block(stream_id, frame.flags, fragment)
        else:
            self._continuation = (stream_id, frame.flags, [fragment])

    def _on_continuation(self, frame: frames.Frame) -> None:
        if self._continuation is None or self._continuation[0] != frame.stream_id:
            raise frames.ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "unexpected CONTINUATION")
        stream_id, flags, parts = self._continuation
        parts.append(frame.payload)
        if sum(map(len, parts)) > MAX_HEADER_BLOCK:
            raise frames.ConnectionFailure(ErrorCode.ENHANCE_YOUR_CALM, "header block too large")
        if frame.flags & Flag.END_HEADERS:
            self._continuation = None
            self._on_header_block(stream_id, flags, b"".join(parts))

    def _on_header_block(self, stream_id: int, flags: int, block: bytes) -> None:
        # Always decoded: the HPACK table must stay in step even for refused streams.
        headers = self._decoder.decode(block)
        existing = self._streams.get(stream_id)
        if existing is not None:  # trailers ending the request
            if not flags & Flag.END_STREAM:
                raise frames.ConnectionFailure(
                    ErrorCode.PROTOCOL_ERROR, "trailers without END_STREAM"
                )
            if existing.task is None and not existing.answered:
                self._dispatch(existing)
            return
        if stream_id <= self._last_stream_id:
            self._write(frames.rst_stream(stream_id, ErrorCode.STREAM_CLOSED))
            return
        self._last_stream_id = stream_id
        if self._going_away or len(self._streams) >= self._limits.max_concurrent_streams:
            self._write(frames.rst_stream(stream_id, ErrorCode.REFUSED_STREAM))
            return
        try:
            head = wire.request_head(headers)
        except wire.NotGrpc as error:
            block = wire.http_error(error.status, str(error))
            self._write(frames.headers_frames(stream_id, block, self._peer_max_frame, True))
            if not flags & Flag.END_STREAM:
                self._write(frames.rst_stream(stream_id, ErrorCode.NO_ERROR))
            return
        except GrpcError as error:
            stream = _Stream(stream_id, wire.RequestHead(""), self._peer_initial_window)
            self._streams[stream_id] = stream
            self._answer_error(stream, error.code, error.message)
            return
        stream = _Stream(stream_id, head, self._peer_initial_window)
        self._streams[stream_id] = stream
        if flags & Flag.END_STREAM:
            self._dispatch(stream)

    def _on_window_update(self, frame: frames.Frame) -> None:
        increment = frames.window_increment(frame.payload)
        if increment == 0:
            raise frames.ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE of zero")
        if frame.stream_id == 0:
            self._send_window += increment
            if self._send_window > frames.MAX_WINDOW:
                raise frames.ConnectionFailure(ErrorCode.FLOW_CONTROL_ERROR, "window overflow")
            for waiting in list(self._streams.values()):
                if waiting.pending or waiting.trailer is not None:
                    self._pump(waiting)
            return
        stream = self._streams.get(frame.stream_id)
        if stream is not None:
            stream.send_window += increment
            self._pump(stream)

    def _on_settings(self, frame: frames.Frame) -> None:
        if frame.stream_id:
            raise frames.ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream")
        if frame.flags & Flag.ACK:
            if frame.payload:
                raise frames.ConnectionFailure(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with data")
            return
        for identifier, value in frames.parse_settings(frame.payload):
            if identifier == Setting.INITIAL_WINDOW_SIZE:
                delta = value - self._peer_initial_window
                self._peer_initial_window = value
                for stream in self._streams.values():
                    stream.send_window += delta
            elif identifier == Setting.MAX_FRAME_SIZE:
                self._peer_max_frame = value
        self._write(frames.SETTINGS_ACK)
        for stream in list(self._streams.values()):
            if stream.pending:
                self._pump(stream)

    # -- calls -------------------------------------------------------------------------------

    def _dispatch(self, stream: _Stream) -> None:
        """The request is complete: start its handler, with its deadline if it has one."""
        method = self._methods.get(stream.head.path)
        if method is None:
            self._answer_error(
                stream, StatusCode.UNIMPLEMENTED, f"method {stream.head.path!r} is not served here"
            )
            return
        try:
            body = stream.body[0] if len(stream.body) == 1 else b"".join(stream.body)
            message = wire.unframe(body, stream.head.encoding)
        except GrpcError as error:
            self._answer_error(stream, error.code, error.message)
            return
        stream.body = []
        if method.unary is not None:
            # Eager start: the call runs now, in this turn of the loop, up to its first
            # suspension (the model's answer), and is resumed from there without a Task
            # (resume.py); a call that never suspends needs nothing more.
            call = self._unary(stream, method.unary(message, stream.head))
            try:
                suspended = call.send(None)
            except StopIteration:
                return
            stream.task = Resumed(self._loop, call, suspended)
        else:
            assert method.stream is not None
            stream.streaming = True
            call = self._server_stream(stream, method.stream(message, stream.head))
            stream.task = self._loop.create_task(call)
        if stream.head.timeout is not None:
            stream.deadline = self._loop.time() + stream.head.timeout
            if self._deadline_timer is None or stream.deadline < self._deadline_at:
                self._arm_deadline(stream.deadline)

    async def _unary(self, stream: _Stream, answer: Awaitable[bytes]) -> None:
        try:
            message = await answer
        except GrpcError as error:
            self._answer_error(stream, error.code, error.message, error.trailers)
        except asyncio.CancelledError:
            return  # whoever cancelled (deadline, RST_STREAM, lost connection) has answered
        except Exception:
            log.exception("gRPC call %s failed unexpectedly", stream.head.path)
            self._answer_error(stream, StatusCode.INTERNAL, "internal error")
        else:
            self._answer(stream, wire.frame_message(message), wire.OK_TRAILERS)

    async def _server_stream(self, stream: _Stream, messages: AsyncIterator[bytes]) -> None:
        self._write(
            frames.headers_frames(stream.id, wire.RESPONSE_HEADERS, self._peer_max_frame, False)
        )
        try:
            async for message in messages:
                stream.pending += wire.frame_message(message)
                self._pump(stream)
        except GrpcError as error:
            self._end(stream, wire.trailers(error.code, error.message, error.trailers))
        except asyncio.CancelledError:
            return
        else:
            self._end(stream, wire.OK_TRAILERS)

    def _arm_deadline(self, when: float) -> None:
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
        self._deadline_at = when
        self._deadline_timer = self._loop.call_at(when, self._expire_due)

    def _expire_due(self) -> None:
        """End the calls whose deadline has come, then wait for the next earliest one."""
        self._deadline_timer = None
        # The loop may run a timer up to one of its ticks early (uvloop counts milliseconds).
        due = self._loop.time() + DEADLINE_TICK
        upcoming: float | None = None
        for stream in list(self._streams.values()):
            deadline = stream.deadline
            if deadline is None or stream.answered:
                continue
            if deadline <= due:
                self._cancel(stream, StatusCode.DEADLINE_EXCEEDED)
                self._answer_error(stream, StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")
            elif upcoming is None or deadline < upcoming:
                upcoming = deadline
        if upcoming is not None:
            self._arm_deadline(upcoming)

    def _cancel(self, stream: _Stream, why: StatusCode = StatusCode.CANCELLED) -> None:
        """Stop a call's work; the handler sees a CancelledError carrying `why`'s name."""
        if stream.task is not None and not stream.task.done():
            stream.task.cancel(why.name)

    # -- answers -----------------------------------------------------------------------------

    def _answer(self, stream: _Stream, data: bytes, trailer: bytes) -> None:
        """Response headers, the message and the trailers; whatever the windows allow now."""
        if stream.answered or stream.id not in self._streams:
            return
        size = len(data)
        head = frames.frame(FrameType.HEADERS, Flag.END_HEADERS, stream.id, wire.RESPONSE_HEADERS)
        if (
            size <= stream.send_window
            and size <= self._send_window
            and size <= self._peer_max_frame
        ):
            # The common case: one write, three frames.
            stream.send_window -= size
            self._send_window -= size
            stream.answered = True
            del self._streams[stream.id]
            self._write(
                head
                + frames.frame(FrameType.DATA, 0, stream.id, data)
                + frames.headers_frames(stream.id, trailer, self._peer_max_frame, True)
            )
            self._close_if_idle()
            return
        self._write(head)
        stream.pending += data
        self._end(stream, trailer)

    def _answer_error(
        self,
        stream: _Stream,
        code: StatusCode,
        message: str,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """A Trailers-Only answer: the status and no message."""
        if stream.answered or stream.id not in self._streams:
            return
        stream.answered = True
        del self._streams[stream.id]
        block = wire.trailers_only(code, message, extra)
        self._write(frames.headers_frames(stream.id, block, self._peer_max_frame, True))
        self._close_if_idle()

    def _end(self, stream: _Stream, trailer: bytes) -> None:
        stream.trailer = trailer
        stream.answered = True
        self._pump(stream)

    def _pump(self, stream: _Stream) -> None:
        """Send what flow control allows of a stream's pending data, then its trailers."""
        while stream.pending:
            size = min(len(stream.pending), stream.send_window, self._send_window)
            if size <= 0:
                return
            chunk = bytes(stream.pending[:size])
            del stream.pending[:size]
            stream.send_window -= size
            self._send_window -= size
            self._write(frames.data_frames(stream.id, chunk, self._peer_max_frame, False))
        if stream.trailer is not None:
            trailer, stream.trailer = stream.trailer, None
            self._write(frames.headers_frames(stream.id, trailer, self._peer_max_frame, True))
            self._streams.pop(stream.id, None)
            self._close_if_idle()

    # -- output ------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        """Queue bytes: sent at the end of data_received, at once when no other call is
        open on the connection (nothing else could join them), else at the end of this turn
        of the loop, so answers finished together leave in one send."""
        self._out.append(data)
        if self._flush_scheduled or self._receiving:
            return
        if not self._streams:
            self._flush()
            return
        self._flush_scheduled = True
        self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._ping_acks:
            # Acknowledgements first (RFC 9113 §6.7 asks they go before other frames).
            self._out[:0] = self._ping_acks
            self._ping_acks = []
            if self._ping_timer is not None:
                self._ping_timer.cancel()
                self._ping_timer = None
        if self._out and self._transport is not None:
            out, self._out = self._out, []
            self._transport.write(b"".join(out))

    def _close_if_idle(self) -> None:
        if self._going_away and not self._streams and self._transport is not None:
            self._flush()
            self._transport.close()

    def _fail(self, code: ErrorCode, message: str) -> None:
        """A connection error: tell the client why, then close."""
        log.info("closing a gRPC connection: %s (%s)", message, code.name)
        for stream in self._streams.values():
            self._cancel(stream)
        self._streams.clear()
        self._write(frames.goaway(self._last_stream_id, code, message))
        if self._transport is not None:
            self._flush()
            self._transport.close()
