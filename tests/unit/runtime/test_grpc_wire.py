"""gRPC's rules over HTTP/2 as the server applies them: request heads, message framing,
timeouts and the status blocks, decoded with the `hpack` library as a client would."""

from __future__ import annotations

import hpack
import pytest
from sluice_runtime.grpc import wire
from sluice_runtime.grpc.generated import inference_pb2 as pb
from sluice_runtime.grpc.status import GrpcError, StatusCode

GRPC_POST = [
    (b":method", b"POST"),
    (b":scheme", b"http"),
    (b":path", b"/inference.GRPCInferenceService/ModelInfer"),
    (b"content-type", b"application/grpc"),
    (b"te", b"trailers"),
]


def decode(block: bytes) -> dict[bytes, bytes]:
    return dict(hpack.Decoder().decode(block, raw=True))


def test_a_grpc_request_head_keeps_path_timeout_and_application_metadata() -> None:
    head = wire.request_head(
        [*GRPC_POST, (b"grpc-timeout", b"250m"), (b"x-request-id", b"abc"), (b"user-agent", b"u")]
    )
    assert head.path == "/inference.GRPCInferenceService/ModelInfer"
    assert head.timeout == pytest.approx(0.25)
    assert head.metadata == {"x-request-id": "abc"}


def test_pseudo_headers_and_protocol_headers_are_never_metadata() -> None:
    head = wire.request_head(
        [*GRPC_POST, (b":authority", b"h:1"), (b":protocol", b"x"), (b"grpc-encoding", b"gzip")]
    )
    assert head.encoding == "gzip"
    assert head.timeout is None
    assert head.metadata == {}
    repeated = wire.request_head([*GRPC_POST, (b"x-a", b"1"), (b"x-a", b"2")])
    assert repeated.metadata == {"x-a": "2"}


def test_a_call_that_is_not_grpc_is_refused_as_such_before_its_timeout_is_read() -> None:
    headers = [(b":method", b"GET"), (b"grpc-timeout", b"soon")]
    with pytest.raises(wire.NotGrpc):
        wire.request_head(headers)


@pytest.mark.parametrize(
    ("change", "status"),
    [((b":method", b"GET"), 405), ((b"content-type", b"application/json"), 415)],
)
def test_requests_that_are_not_grpc_get_a_plain_http_status(
    change: tuple[bytes, bytes], status: int
) -> None:
    headers = [change if name == change[0] else (name, value) for name, value in GRPC_POST]
    with pytest.raises(wire.NotGrpc) as caught:
        wire.request_head(headers)
    assert caught.value.status == status


@pytest.mark.parametrize(
    ("value", "seconds"), [("1H", 3600.0), ("2M", 120.0), ("3S", 3.0), ("40u", 4e-5), ("7n", 7e-9)]
)
def test_timeouts_in_every_unit(value: str, seconds: float) -> None:
    assert wire.parse_timeout(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["", "S", "10", "10x", "-1S", "123456789S"])
def test_malformed_timeouts_are_invalid_arguments(value: str) -> None:
    with pytest.raises(GrpcError) as caught:
        wire.parse_timeout(value)
    assert caught.value.code is StatusCode.INVALID_ARGUMENT


def test_one_message_unframes_and_anything_else_is_refused_with_a_reason() -> None:
    assert wire.unframe(wire.frame_message(b"hello"), "identity") == b"hello"
    cases = [
        (b"", StatusCode.INVALID_ARGUMENT, "no message"),
        (wire.frame_message(b"a") + wire.frame_message(b"b"), StatusCode.INVALID_ARGUMENT, "one"),
        (b"\x01" + wire.frame_message(b"zz")[1:], StatusCode.UNIMPLEMENTED, "compressed"),
    ]
    for body, code, fragment in cases:
        with pytest.raises(GrpcError) as caught:
            wire.unframe(body, "gzip")
        assert caught.value.code is code
        assert fragment in caught.value.message


def test_bytes_that_are_not_the_message_are_invalid_arguments() -> None:
    with pytest.raises(GrpcError) as caught:
        wire.parse(pb.ModelInferRequest, b"\xff\xff\xff")
    assert caught.value.code is StatusCode.INVALID_ARGUMENT
    assert "ModelInferRequest" in caught.value.message


def test_status_blocks_decode_to_what_grpc_clients_read() -> None:
    assert decode(wire.RESPONSE_HEADERS + wire.OK_TRAILERS) == {
        b":status": b"200",
        b"content-type": b"application/grpc",
        b"grpc-accept-encoding": b"identity",
        b"grpc-status": b"0",
    }
    block = wire.trailers_only(StatusCode.NOT_FOUND, "model 'ä' 100%", (("x-request-id", "r1"),))
    fields = decode(block)
    assert fields[b"grpc-status"] == b"5"
    assert fields[b"grpc-message"] == b"model '%C3%A4' 100%25"
    assert fields[b"x-request-id"] == b"r1"
