"""HTTP/2 frames (RFC 9113) as pure functions: build them, split a buffer into them.

Only what a server of unary and server-streaming gRPC calls needs. Nothing here does I/O;
`connection.py` feeds bytes in and writes what these functions build.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator
from typing import NamedTuple

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEADER_SIZE = 9
DEFAULT_WINDOW = 65_535
DEFAULT_MAX_FRAME = 16_384
MAX_WINDOW = 2**31 - 1
MAX_FRAME_LIMIT = 2**24 - 1


class FrameType:
    """Frame type codes: plain ints, since enum arithmetic costs microseconds per frame."""

    DATA = 0x0
    HEADERS = 0x1
    PRIORITY = 0x2
    RST_STREAM = 0x3
    SETTINGS = 0x4
    PUSH_PROMISE = 0x5
    PING = 0x6
    GOAWAY = 0x7
    WINDOW_UPDATE = 0x8
    CONTINUATION = 0x9


class Flag:
    """Frame flag bits (plain ints, like FrameType)."""

    END_STREAM = 0x1  # DATA, HEADERS
    ACK = 0x1  # SETTINGS, PING
    END_HEADERS = 0x4
    PADDED = 0x8
    PRIORITY = 0x20


class ErrorCode(enum.IntEnum):
    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    ENHANCE_YOUR_CALM = 0xB


class Setting(enum.IntEnum):
    HEADER_TABLE_SIZE = 0x1
    ENABLE_PUSH = 0x2
    MAX_CONCURRENT_STREAMS = 0x3
    INITIAL_WINDOW_SIZE = 0x4
    MAX_FRAME_SIZE = 0x5
    MAX_HEADER_LIST_SIZE = 0x6


class ConnectionFailure(Exception):
    """A connection error (RFC 9113 §5.4.1): the peer gets a GOAWAY with `code`, then EOF."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Frame(NamedTuple):
    """One frame off the wire; `payload` still holds any padding or priority fields.

    A named tuple, not a frozen dataclass: a gRPC call arrives as about four frames, and a
    frozen dataclass's constructor sets each field through object.__setattr__ (splitting
    those four took 12.5 µs with one, 7.7 µs with this).
    """

    type: int
    flags: int
    stream_id: int
    payload: bytes


_HEADER = struct.Struct(">BHBBI")  # length as one byte + two bytes, type, flags, stream id
_new_tuple = tuple.__new__


def frame(type_: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """One frame's bytes."""
    length = len(payload)
    return _HEADER.pack(length >> 16, length & 0xFFFF, type_, flags, stream_id) + payload


def split_frames(buffer: bytes | bytearray, max_size: int) -> tuple[list[Frame], int]:
    """The whole frames at the start of `buffer` and how many bytes they used.

    A frame longer than `max_size` (the SETTINGS_MAX_FRAME_SIZE we advertised) is a
    FRAME_SIZE_ERROR; a partial frame at the end stays for the next read.
    """
    frames: list[Frame] = []
    position, end = 0, len(buffer)
    unpack = _HEADER.unpack_from
    # Payloads are copied out through a memoryview: slicing a bytearray first would make a
    # second, temporary copy, and for large frames that allocation costs more than the copy.
    view = memoryview(buffer)
    try:
        while end - position >= HEADER_SIZE:
            high, low, type_, flags, stream_id = unpack(view, position)
            length = (high << 16) | low
            if length > max_size:
                raise ConnectionFailure(
                    ErrorCode.FRAME_SIZE_ERROR, f"frame of {length} bytes exceeds {max_size}"
                )
            start = position + HEADER_SIZE
            if end - start < length:
                break
            position = start + length
            # tuple.__new__ builds the named tuple without its Python-level __new__ (half
            # the cost, for the four or so frames of every call).
            fields = (type_, flags, stream_id & MAX_WINDOW, bytes(view[start:position]))
            frames.append(_new_tuple(Frame, fields))
    finally:
        view.release()  # the caller resizes the buffer next, which an exported view forbids
    return frames, position


def strip_padding(flags: int, payload: bytes) -> bytes:
    """DATA or HEADERS payload without its padding (PADDED flag)."""
    if not flags & Flag.PADDED:
        return payload
    if not payload or payload[0] >= len(payload):
        raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, "padding longer than the frame")
    return payload[1 : len(payload) - payload[0]]


def header_block_fragment(flags: int, payload: bytes) -> bytes:
    """A HEADERS frame's header block fragment: padding and priority fields removed."""
    payload = strip_padding(flags, payload)
    if flags & Flag.PRIORITY:
        if len(payload) < 5:
            raise ConnectionFailure(ErrorCode.FRAME_SIZE_ERROR, "HEADERS priority fields cut short")
        payload = payload[5:]
    return payload


def parse_settings(payload: bytes) -> Iterator[tuple[int, int]]:
    """(identifier, value) pairs of a SETTINGS frame, checked as RFC 9113 §6.5.2 asks."""
    if len(payload) % 6:
        raise ConnectionFailure(
            ErrorCode.FRAME_SIZE_ERROR, "SETTINGS length is not a multiple of 6"
        )
    for offset in range(0, len(payload), 6):
        identifier, value = struct.unpack_from(">HI", payload, offset)
        if identifier == Setting.INITIAL_WINDOW_SIZE and value > MAX_WINDOW:
            raise ConnectionFailure(ErrorCode.FLOW_CONTROL_ERROR, "initial window above 2^31-1")
        if (
            identifier == Setting.MAX_FRAME_SIZE
            and not DEFAULT_MAX_FRAME <= value <= MAX_FRAME_LIMIT
        ):
            raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, f"invalid max frame size {value}")
        if identifier == Setting.ENABLE_PUSH and value > 1:
            raise ConnectionFailure(ErrorCode.PROTOCOL_ERROR, f"invalid enable push {value}")
        yield identifier, value


def settings(values: dict[Setting, int]) -> bytes:
    """A SETTINGS frame announcing `values`."""
    body = b"".join(struct.pack(">HI", key, value) for key, value in values.items())
    return frame(FrameType.SETTINGS, 0, 0, body)


SETTINGS_ACK = frame(FrameType.SETTINGS, Flag.ACK, 0)


def window_increment(payload: bytes) -> int:
    """A WINDOW_UPDATE frame's increment (a zero increment is the caller's to judge)."""
    if len(payload) != 4:
        raise ConnectionFailure(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE is not 4 bytes")
    return int.from_bytes(payload, "big") & MAX_WINDOW


def window_update(stream_id: int, increment: int) -> bytes:
    """A WINDOW_UPDATE frame granting `increment` more bytes."""
    return frame(FrameType.WINDOW_UPDATE, 0, stream_id, increment.to_bytes(4, "big"))


def rst_stream(stream_id: int, code: ErrorCode) -> bytes:
    """An RST_STREAM frame ending one stream."""
    return frame(FrameType.RST_STREAM, 0, stream_id, int(code).to_bytes(4, "big"))


def error_code(payload: bytes) -> int:
    """The error code an RST_STREAM frame carries."""
    if len(payload) != 4:
        raise ConnectionFailure(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM is not 4 bytes")
    return int.from_bytes(payload, "big")


def goaway(last_stream_id: int, code: ErrorCode, debug: str = "") -> bytes:
    """A GOAWAY frame: streams above `last_stream_id` were not and will not be processed."""
    body = struct.pack(">II", last_stream_id, code) + debug.encode()[:256]
    return frame(FrameType.GOAWAY, 0, 0, body)


def data_frames(stream_id: int, data: bytes, max_frame: int, end_stream: bool) -> bytes:
    """`data` as DATA frames no longer than `max_frame`; END_STREAM on the last when asked."""
    if len(data) <= max_frame:
        return frame(FrameType.DATA, Flag.END_STREAM if end_stream else 0, stream_id, data)
    view = memoryview(data)
    parts = []
    for start in range(0, len(data), max_frame):
        last = start + max_frame >= len(data)
        flags = Flag.END_STREAM if end_stream and last else 0
        parts.append(
            frame(FrameType.DATA, flags, stream_id, bytes(view[start : start + max_frame]))
        )
    return b"".join(parts)


def headers_frames(stream_id: int, block: bytes, max_frame: int, end_stream: bool) -> bytes:
    """A header block as HEADERS (+ CONTINUATION) frames no longer than `max_frame`."""
    first_flags = Flag.END_STREAM if end_stream else 0
    if len(block) <= max_frame:
        return frame(FrameType.HEADERS, first_flags | Flag.END_HEADERS, stream_id, block)
    chunks = [block[start : start + max_frame] for start in range(0, len(block), max_frame)]
    out = [frame(FrameType.HEADERS, first_flags, stream_id, chunks[0])]
    for index, chunk in enumerate(chunks[1:], start=1):
        flags = Flag.END_HEADERS if index == len(chunks) - 1 else 0
        out.append(frame(FrameType.CONTINUATION, flags, stream_id, chunk))
    return b"".join(out)


def hpack_integer(value: int, prefix_bits: int, first: int) -> bytes:
    """An HPACK integer (RFC 7541 §5.1) with `first` holding the bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal(name: bytes, value: bytes) -> bytes:
    """One header field as an HPACK literal that never touches the dynamic table.

    Responses are encoded only this way (plus static-table indices), so our encoder keeps no
    state and any block can be built ahead of time.
    """
    return b"\x00" + hpack_integer(len(name), 7, 0) + name + hpack_integer(len(value), 7, 0) + value
