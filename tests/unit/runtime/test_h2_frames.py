"""HTTP/2 framing: what the gRPC server reads and writes, checked against the RFC's rules and
against the `hpack` library's decoder for the header blocks we encode by hand."""

from __future__ import annotations

import hpack
import pytest
from sluice_runtime.h2 import frames
from sluice_runtime.h2.frames import ErrorCode, Flag, FrameType, Setting


def test_frames_split_whole_and_leave_a_partial_one_for_the_next_read() -> None:
    wire = frames.frame(FrameType.PING, 0, 0, b"12345678") + frames.window_update(3, 1000)
    partial = frames.frame(FrameType.DATA, 0, 5, b"abcdef")[:-2]
    parsed, used = frames.split_frames(wire + partial, frames.DEFAULT_MAX_FRAME)
    assert [(f.type, f.stream_id) for f in parsed] == [(6, 0), (8, 3)]
    assert parsed[0].payload == b"12345678"
    assert frames.window_increment(parsed[1].payload) == 1000
    assert used == len(wire)


def test_a_frame_above_the_advertised_size_is_a_frame_size_error() -> None:
    big = frames.frame(FrameType.DATA, 0, 1, bytes(20_000))
    with pytest.raises(frames.ConnectionFailure) as caught:
        frames.split_frames(big, frames.DEFAULT_MAX_FRAME)
    assert caught.value.code is ErrorCode.FRAME_SIZE_ERROR


def test_padding_and_priority_fields_are_removed_from_header_blocks() -> None:
    block = b"\x82\x86"
    padded = bytes([3]) + bytes(5) + block + b"\x00\x00\x00"  # pad length, priority, block, pad
    assert frames.header_block_fragment(Flag.PADDED | Flag.PRIORITY, padded) == block
    with pytest.raises(frames.ConnectionFailure):
        frames.strip_padding(Flag.PADDED, bytes([9]) + b"abc")


@pytest.mark.parametrize(
    ("setting", "value", "code"),
    [
        (Setting.INITIAL_WINDOW_SIZE, 2**31, ErrorCode.FLOW_CONTROL_ERROR),
        (Setting.MAX_FRAME_SIZE, 100, ErrorCode.PROTOCOL_ERROR),
        (Setting.ENABLE_PUSH, 2, ErrorCode.PROTOCOL_ERROR),
    ],
)
def test_settings_out_of_range_are_connection_errors(
    setting: Setting, value: int, code: ErrorCode
) -> None:
    payload = frames.settings({setting: value})[frames.HEADER_SIZE :]
    with pytest.raises(frames.ConnectionFailure) as caught:
        list(frames.parse_settings(payload))
    assert caught.value.code is code


def test_settings_round_trip_and_reject_a_ragged_length() -> None:
    payload = frames.settings({Setting.MAX_FRAME_SIZE: 1 << 20, Setting.ENABLE_PUSH: 0})
    assert list(frames.parse_settings(payload[frames.HEADER_SIZE :])) == [(5, 1 << 20), (2, 0)]
    with pytest.raises(frames.ConnectionFailure):
        list(frames.parse_settings(b"\x00\x01\x00"))


def test_data_is_cut_to_the_peer_frame_size_with_end_stream_only_on_the_last() -> None:
    wire = frames.data_frames(7, bytes(range(250)) * 100, 16_384, end_stream=True)
    parsed, used = frames.split_frames(wire, frames.DEFAULT_MAX_FRAME)
    assert used == len(wire)
    assert [len(f.payload) for f in parsed] == [16_384, 8_616]
    assert [f.flags for f in parsed] == [0, Flag.END_STREAM]
    assert b"".join(f.payload for f in parsed) == bytes(range(250)) * 100


def test_a_long_header_block_continues_in_continuation_frames() -> None:
    block = bytes(40_000)
    parsed, _ = frames.split_frames(
        frames.headers_frames(9, block, 16_384, end_stream=True), frames.DEFAULT_MAX_FRAME
    )
    assert [f.type for f in parsed] == [
        FrameType.HEADERS, FrameType.CONTINUATION, FrameType.CONTINUATION
    ]  # fmt: skip
    assert parsed[0].flags == Flag.END_STREAM
    assert parsed[-1].flags == Flag.END_HEADERS
    assert b"".join(f.payload for f in parsed) == block


@pytest.mark.parametrize("length", [0, 126, 127, 128, 300, 70_000])
def test_literals_we_encode_decode_with_hpack_and_leave_its_table_alone(length: int) -> None:
    value = b"v" * length
    decoder = hpack.Decoder(max_header_list_size=1 << 20)
    decoded = decoder.decode(frames.hpack_literal(b"grpc-message", value), raw=True)
    assert list(decoded) == [(b"grpc-message", value)]
    assert len(decoder.header_table.dynamic_entries) == 0


def test_goaway_and_rst_stream_carry_their_codes() -> None:
    parsed, _ = frames.split_frames(
        frames.goaway(11, ErrorCode.PROTOCOL_ERROR, "why") + frames.rst_stream(3, ErrorCode.CANCEL),
        frames.DEFAULT_MAX_FRAME,
    )
    goaway, reset = parsed
    assert goaway.payload == (11).to_bytes(4, "big") + (1).to_bytes(4, "big") + b"why"
    assert (reset.stream_id, frames.error_code(reset.payload)) == (3, ErrorCode.CANCEL)
