"""Lean clients for the runtime benchmark: pre-encoded requests, minimal decoding.

The client shares a 2-core machine with the server, so every microsecond it spends is
one the server cannot have. Requests are encoded once; REST goes over raw HTTP/1.1
keep-alive connections on asyncio streams (no client library per request), gRPC over
one grpc.aio channel with a prebuilt message. Each answer is decoded once, up front,
to check it against onnxruntime, and only its status is checked under load.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
from sluice_runtime.grpc.generated import inference_pb2 as pb
from sluice_runtime.grpc.generated import inference_pb2_grpc as pb_grpc

Array = np.ndarray[Any, Any]
Call = Callable[[], Awaitable[None]]
HEADER_LENGTH = "inference-header-content-length"


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


def rest_json_body(input_name: str, x: Array) -> tuple[bytes, dict[str, str]]:
    """A V2 JSON infer request."""
    doc = {
        "inputs": [
            {
                "name": input_name,
                "shape": list(x.shape),
                "datatype": "FP32",
                "data": x.ravel().tolist(),
            }
        ]
    }
    return json.dumps(doc).encode(), {"content-type": "application/json"}


def rest_binary_body(input_name: str, output_name: str, x: Array) -> tuple[bytes, dict[str, str]]:
    """A V2 request in the binary tensor extension, binary output too (tritonclient's default)."""
    raw = np.ascontiguousarray(x, dtype=np.float32).tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": input_name,
                    "shape": list(x.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": output_name, "parameters": {"binary_data": True}}],
        }
    ).encode()
    headers = {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(header))}
    return header + raw, headers


def decode_rest(answer: HttpAnswer) -> Array:
    """The first output of a JSON or binary-extension answer."""
    length = answer.headers.get(HEADER_LENGTH)
    header = answer.body if length is None else answer.body[: int(length)]
    output = json.loads(header)["outputs"][0]
    if length is None:
        return np.array(output["data"], dtype=np.float32).reshape(output["shape"])
    raw = answer.body[int(length) :][: output["parameters"]["binary_data_size"]]
    return np.frombuffer(raw, dtype=np.float32).reshape(output["shape"])


class HttpConnection:
    """One keep-alive HTTP/1.1 connection that POSTs the same pre-encoded request."""

    def __init__(self, host: str, port: int, path: str, body: bytes, headers: dict[str, str]):
        self._host, self._port = host, port
        lines = [f"POST {path} HTTP/1.1", f"host: {host}:{port}", f"content-length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def call(self) -> HttpAnswer:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        self._writer.write(self._request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await self._reader.readexactly(int(headers.get("content-length", "0")))
        return HttpAnswer(int(status_line.split()[1]), headers, body)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()


class RestClient:
    """`concurrency` connections, one per closed-loop worker."""

    def __init__(self, url: str, model: str, body: bytes, headers: dict[str, str]) -> None:
        host, port = url.removeprefix("http://").split(":")
        self._target = (host, int(port), f"/v2/models/{model}/infer")
        self._body, self._headers = body, headers
        self._connections: list[HttpConnection] = []

    def _open(self) -> HttpConnection:
        return HttpConnection(*self._target, self._body, self._headers)

    def worker(self) -> Call:
        connection = self._open()
        self._connections.append(connection)

        async def call() -> None:
            answer = await connection.call()
            if answer.status != 200:
                raise RuntimeError(f"HTTP {answer.status}: {answer.body[:200]!r}")

        return call

    async def answer(self) -> Array:
        connection = self._open()
        try:
            return decode_rest(await connection.call())
        finally:
            await connection.close()

    async def close(self) -> None:
        await asyncio.gather(*(connection.close() for connection in self._connections))


class GrpcClient:
    """One channel shared by every worker (HTTP/2 multiplexes them), like tritonclient's."""

    def __init__(self, address: str, model: str, input_name: str, x: Array) -> None:
        self._channel = grpc.aio.insecure_channel(
            address, options=[("grpc.max_receive_message_length", -1)]
        )
        self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)
        tensor = pb.ModelInferRequest.InferInputTensor(
            name=input_name, datatype="FP32", shape=list(x.shape)
        )
        self._request = pb.ModelInferRequest(
            model_name=model,
            inputs=[tensor],
            raw_input_contents=[np.ascontiguousarray(x, dtype=np.float32).tobytes()],
        )

    def worker(self) -> Call:
        async def call() -> None:
            await self._stub.ModelInfer(self._request)

        return call

    async def answer(self) -> Array:
        reply = await self._stub.ModelInfer(self._request)
        output = reply.outputs[0]
        raw = reply.raw_output_contents[0]
        return np.frombuffer(raw, dtype=np.float32).reshape(list(output.shape))

    async def close(self) -> None:
        await self._channel.close()
