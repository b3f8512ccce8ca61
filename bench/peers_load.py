"""Driving load with compiled clients (wrk for REST, grpcload for gRPC), reading their figures.

The client runs under `taskset -c CLIENT_CORE` on one thread (wrk -t1, grpcload's
GOMAXPROCS=1), closed loop with `concurrency` requests in flight, for a duration. Its own CPU
time comes from wait4's rusage, so each row shows how much faster the client is than the
server it measures. grpcload (bench/peers/grpcload/) replaces ghz: ghz builds a dynamic
protobuf message per call and spent as much CPU per request as the server it measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import numpy as np
from sluice_runtime.grpc.generated import inference_pb2 as pb
from sluice_runtime.grpc.generated import inference_pb2_grpc as pb_grpc

from bench.peers_bodies import (
    BINARY_TYPE,
    HEADER_LENGTH,
    JSON_TYPE,
    Array,
    Bodies,
    decode_binary_answer,
    decode_grpc_answer,
    decode_json_answer,
)
from bench.peers_env import PEERS_DIR, Tools
from bench.peers_servers import CLIENT_CORE, RunningServer

PROTOCOLS = ("rest-json", "rest-binary", "grpc")
GRPC_METHOD = "/inference.GRPCInferenceService/ModelInfer"
CLIENT_TIMEOUT_S = 10


@dataclass(frozen=True)
class LoadResult:
    """One measured run: answered requests over `seconds`, latency quantiles, errors, client CPU."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    client_cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def parse_wrk(stdout: str, client_cpu_s: float) -> LoadResult:
    """Figures from the JSON line bench/peers/post.lua prints when wrk is done."""
    line = next(line for line in reversed(stdout.splitlines()) if line.startswith("{"))
    doc = json.loads(line)
    errors = sum(
        int(doc[key])
        for key in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return LoadResult(
        requests=int(doc["requests"]) - int(doc["status_errors"]),
        seconds=int(doc["duration_us"]) / 1e6,
        p50_ms=int(doc["p50_us"]) / 1e3,
        p99_ms=int(doc["p99_us"]) / 1e3,
        errors=errors,
        client_cpu_s=client_cpu_s,
    )


def parse_grpcload(stdout: str, client_cpu_s: float) -> LoadResult:
    """Figures from grpcload's JSON line (latencies in microseconds)."""
    doc = json.loads(stdout.strip().splitlines()[-1])
    return LoadResult(
        requests=int(doc["requests"]),
        seconds=float(doc["seconds"]),
        p50_ms=float(doc["p50_us"]) / 1e3,
        p99_ms=float(doc["p99_us"]) / 1e3,
        errors=int(doc["errors"]),
        client_cpu_s=client_cpu_s,
    )


def wrk_argv(
    tools: Tools, url: str, concurrency: int, seconds: int, body: Path, binary_header: int | None
) -> list[str]:
    """One wrk thread, `concurrency` connections, posting `body` for `seconds`."""
    argv = [
        str(tools.wrk), "-t1", f"-c{concurrency}", f"-d{seconds}s",
        f"--timeout={CLIENT_TIMEOUT_S}s", "-s", str(PEERS_DIR / "post.lua"), url, "--", str(body),
    ]  # fmt: skip
    if binary_header is None:
        return [*argv, JSON_TYPE]
    return [*argv, BINARY_TYPE, str(binary_header)]


@dataclass(frozen=True)
class Spread:
    """How a client spreads its load: OS threads and connections (one each by default)."""

    cores: str = str(CLIENT_CORE)
    procs: int = 1
    connections: int = 1


def grpc_argv(
    tools: Tools,
    address: str,
    concurrency: int,
    seconds: int,
    body: Path,
    spread: Spread = Spread(),
) -> list[str]:
    """grpcload over `spread`'s threads and HTTP/2 connections, replaying `body` for `seconds`."""
    return [
        str(tools.grpcload), "-addr", address, "-method", GRPC_METHOD, "-body", str(body),
        "-c", str(concurrency), "-connections", str(spread.connections),
        "-procs", str(spread.procs), "-duration", f"{seconds}s",
        "-timeout", f"{CLIENT_TIMEOUT_S}s",
    ]  # fmt: skip


class Client:
    """The load generators for one server: the bodies written to files once."""

    def __init__(
        self, tools: Tools, bodies: Bodies, folder: Path, spread: Spread = Spread()
    ) -> None:
        self._tools = tools
        self._spread = spread
        self._bodies = bodies
        folder.mkdir(parents=True, exist_ok=True)
        self._json = folder / "request.json"
        self._binary = folder / "request.bin"
        self._grpc = folder / "request.grpc"
        self._json.write_bytes(bodies.rest_json)
        self._binary.write_bytes(bodies.rest_binary)
        self._grpc.write_bytes(bodies.grpc)

    def run(
        self, server: RunningServer, model: str, protocol: str, concurrency: int, seconds: int
    ) -> LoadResult:
        """Load `server` over `protocol` with `concurrency` requests in flight for `seconds`."""
        if protocol == "grpc":
            argv = grpc_argv(
                self._tools, server.grpc_address, concurrency, seconds, self._grpc, self._spread
            )
            stdout, cpu = _measured(argv, self._spread.cores)
            return parse_grpcload(stdout, cpu)
        url = f"{server.http_url}/v2/models/{model}/infer"
        binary = self._bodies.binary_header_length if protocol == "rest-binary" else None
        body = self._binary if binary is not None else self._json
        argv = wrk_argv(self._tools, url, concurrency, seconds, body, binary)
        stdout, cpu = _measured(argv, self._spread.cores)
        return parse_wrk(stdout, cpu)


def _measured(argv: list[str], cores: str) -> tuple[str, float]:
    """Run a client pinned to `cores`; its stdout and CPU seconds from wait4."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            ["taskset", "-c", cores, *argv], stdout=subprocess.PIPE, stderr=errors
        )
        assert process.stdout is not None
        stdout = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            message = errors.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{argv[0]} failed ({process.returncode}): {message}")
    return stdout.decode(), usage.ru_utime + usage.ru_stime


def check_answers(
    server: RunningServer, model: str, bodies: Bodies, expected: Array, protocols: tuple[str, ...]
) -> None:
    """One request per protocol with the bench bodies; the answer must equal onnxruntime's."""
    url = f"{server.http_url}/v2/models/{model}/infer"
    with httpx.Client(timeout=10.0) as client:
        for protocol in protocols:
            if protocol == "rest-json":
                reply = client.post(
                    url, content=bodies.rest_json, headers={"content-type": JSON_TYPE}
                )
                reply.raise_for_status()
                got = decode_json_answer(reply.content)
            elif protocol == "rest-binary":
                headers = {
                    "content-type": BINARY_TYPE,
                    HEADER_LENGTH: str(bodies.binary_header_length),
                }
                reply = client.post(url, content=bodies.rest_binary, headers=headers)
                reply.raise_for_status()
                length = reply.headers.get(HEADER_LENGTH)
                got = decode_binary_answer(reply.content, int(length) if length else None)
            else:
                with grpc.insecure_channel(server.grpc_address) as channel:
                    stub = pb_grpc.GRPCInferenceServiceStub(channel)
                    answer = stub.ModelInfer(
                        pb.ModelInferRequest.FromString(bodies.grpc), timeout=10
                    )
                got = decode_grpc_answer(answer.SerializeToString())
            if not np.allclose(got, expected, rtol=1e-4, atol=1e-5):
                label = f"{server.config.label} {protocol}"
                raise RuntimeError(f"{label}: answer {got} is not onnxruntime's {expected}")


def binary_refused(server: RunningServer, model: str, bodies: Bodies) -> int | None:
    """The HTTP status a server gives a binary-extension request, None when it answers right."""
    headers = {"content-type": BINARY_TYPE, HEADER_LENGTH: str(bodies.binary_header_length)}
    url = f"{server.http_url}/v2/models/{model}/infer"
    reply = httpx.post(url, content=bodies.rest_binary, headers=headers, timeout=10.0)
    return None if reply.status_code == 200 else reply.status_code
