"""Sluice's own HTTP/2 gRPC server against real clients: grpcio (what tritonclient uses) and a
raw socket, on the edges the protocol tests do not reach: flow control with messages far
larger than every window and frame, many calls at once on one connection, deadlines,
compression, unknown methods, a client that is not speaking HTTP/2, and the health Watch
stream through draining.
"""

from __future__ import annotations

import signal
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sluice_runtime.grpc.generated import inference_pb2 as pb
from sluice_runtime.h2 import frames

from tests.models import echo, slow
from tests.runtime.harness import RuntimeProcess, StartRuntime

Array = np.ndarray[Any, Any]
UNLIMITED = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]


def infer(runtime: RuntimeProcess, x: Array, **kwargs: Any) -> Array:
    with grpcclient.InferenceServerClient(runtime.grpc_address, channel_args=UNLIMITED) as client:
        tensor = grpcclient.InferInput("x", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x)
        answer = client.infer(runtime.model_name, [tensor], **kwargs).as_numpy("y")
    assert answer is not None
    return answer


def test_messages_far_beyond_every_window_and_frame_arrive_whole(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    # 24 MiB each way: many DATA frames, and both sides must wait for WINDOW_UPDATEs.
    runtime = start_runtime(echo(tmp_path / "echo.onnx", width=1024))
    x = np.random.default_rng(3).standard_normal((6144, 1024)).astype(np.float32)
    np.testing.assert_array_equal(infer(runtime, x), x)


def test_many_calls_at_once_on_one_connection_each_get_their_own_answer(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    runtime = start_runtime(echo(tmp_path / "echo.onnx"), max_batch_size=16)
    inputs = [np.full((1, 4), i, dtype=np.float32) for i in range(300)]
    with grpcclient.InferenceServerClient(runtime.grpc_address) as client:

        def call(x: Array) -> Array:
            tensor = grpcclient.InferInput("x", [1, 4], "FP32")
            tensor.set_data_from_numpy(x)
            answer = client.infer(runtime.model_name, [tensor]).as_numpy("y")
            assert answer is not None
            return answer

        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(call, inputs))
    for x, answer in zip(inputs, answers, strict=True):
        np.testing.assert_array_equal(answer, x)


def test_deadline_exceeded_ends_the_call_and_the_server_goes_on(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    runtime = start_runtime(slow(tmp_path / "slow.onnx", rounds=400))
    x = np.ones((1, 4), dtype=np.float32)
    with pytest.raises(grpcclient.InferenceServerException) as caught:
        infer(runtime, x, client_timeout=0.05)
    assert caught.value.status() == "StatusCode.DEADLINE_EXCEEDED"
    np.testing.assert_array_equal(infer(runtime, x), x)
    # The server counts the expired call as DEADLINE_EXCEEDED when its own timer fires first,
    # CANCELLED when the client's reset at the same deadline arrives first.
    ended = [
        runtime.metric("sluice_requests_total", protocol="grpc", code=code)
        for code in ("DEADLINE_EXCEEDED", "CANCELLED")
    ]
    assert sum(ended) == 1, ended


def test_a_call_the_client_cancels_is_counted_cancelled_and_others_go_on(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    runtime = start_runtime(slow(tmp_path / "slow.onnx", rounds=400))
    request = _raw_request(runtime, np.zeros((1, 4), np.float32))
    with grpc.insecure_channel(runtime.grpc_address) as channel:
        call = _model_infer(channel).future(request, timeout=60)
        runtime.wait_metric("sluice_requests_in_flight", 1, protocol="grpc")
        assert call.cancel()
        runtime.wait_metric("sluice_requests_total", 1, protocol="grpc", code="CANCELLED")
        answer = _model_infer(channel)(request, timeout=60)
    assert np.frombuffer(answer.raw_output_contents[0], np.float32).tolist() == [0.0] * 4
    assert runtime.metric("sluice_requests_in_flight", protocol="grpc") == 0


def _raw_request(runtime: RuntimeProcess, x: Array) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=runtime.model_name)
    request.inputs.add(name="x", datatype="FP32", shape=list(x.shape))
    request.raw_input_contents.append(x.tobytes())
    return request


def _model_infer(channel: grpc.Channel) -> Any:
    return channel.unary_unary(
        "/inference.GRPCInferenceService/ModelInfer",
        request_serializer=pb.ModelInferRequest.SerializeToString,
        response_deserializer=pb.ModelInferResponse.FromString,
    )


def test_compressed_requests_and_unknown_methods_are_refused_by_name(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    runtime = start_runtime(echo(tmp_path / "echo.onnx"))
    request = pb.ModelInferRequest(model_name=runtime.model_name)
    request.inputs.add(name="x", datatype="FP32", shape=[1024, 4])
    request.raw_input_contents.append(bytes(1024 * 4 * 4))  # zeros: gzip gets to work
    with grpc.insecure_channel(runtime.grpc_address) as channel:
        with pytest.raises(grpc.RpcError) as compressed:
            _model_infer(channel)(request, timeout=10, compression=grpc.Compression.Gzip)
        stream_infer = channel.stream_stream("/inference.GRPCInferenceService/ModelStreamInfer")
        with pytest.raises(grpc.RpcError) as unknown:
            next(iter(stream_infer(iter([b""]), timeout=10)))
        with pytest.raises(grpc.RpcError) as garbage:
            channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")(
                b"\xff\xff\xff", timeout=10
            )
    assert compressed.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "compressed requests (gzip) are not supported" in compressed.value.details()
    assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "ModelStreamInfer" in unknown.value.details()
    assert garbage.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a ModelInferRequest message" in garbage.value.details()


def test_a_client_that_does_not_speak_http2_gets_goaway_and_eof(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    runtime = start_runtime(echo(tmp_path / "echo.onnx"))
    with socket.create_connection(("127.0.0.1", runtime.grpc_port), timeout=10) as sock:
        sock.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n")
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    parsed, _ = frames.split_frames(received, frames.MAX_FRAME_LIMIT)
    kinds = [frame.type for frame in parsed]
    assert kinds[0] == frames.FrameType.SETTINGS  # the server's preface
    goaway = parsed[kinds.index(frames.FrameType.GOAWAY)]
    assert int.from_bytes(goaway.payload[4:8], "big") == frames.ErrorCode.PROTOCOL_ERROR
    assert b"preface" in goaway.payload[8:]
    np.testing.assert_array_equal(infer(runtime, np.ones((1, 4), np.float32)), 1)


def test_health_watch_streams_serving_then_not_serving_when_draining(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    runtime = start_runtime(echo(tmp_path / "echo.onnx"))
    with grpc.insecure_channel(runtime.grpc_address) as channel:
        stream = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=""), timeout=60
        )
        first = next(stream)
        runtime.process.send_signal(signal.SIGTERM)
        second = next(stream)
        with pytest.raises(grpc.RpcError) as ended:
            next(stream)
    assert first.status == health_pb2.HealthCheckResponse.SERVING
    assert second.status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "shutting down" in ended.value.details()
    assert runtime.wait_exit() == 0


def _minor_faults(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[7])  # field 10: minflt


def test_large_requests_reuse_warm_memory_instead_of_faulting_in_fresh_pages(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    # 256 KiB each way per call. With glibc's defaults each such buffer is a fresh mmap whose
    # 64 pages fault in one by one, several buffers per call (sluice_runtime/allocator.py).
    runtime = start_runtime(echo(tmp_path / "echo.onnx", width=1024))
    x = np.random.default_rng(5).standard_normal((64, 1024)).astype(np.float32)
    request = _raw_request(runtime, x)
    with grpc.insecure_channel(runtime.grpc_address, options=UNLIMITED) as channel:
        infer_call = _model_infer(channel)
        with ThreadPoolExecutor(16) as pool:  # several requests alive at once, as in service

            def calls(count: int) -> list[Any]:
                return list(pool.map(lambda _: infer_call(request, timeout=10), range(count)))

            calls(100)  # the heap grows to its working size
            before = _minor_faults(runtime.process.pid)
            answers = calls(400)
            faults = _minor_faults(runtime.process.pid) - before
    assert all(answer.raw_output_contents[0] == x.tobytes() for answer in answers)
    assert faults / 400 < 8, f"{faults / 400:.1f} minor page faults per 256 KiB call"
