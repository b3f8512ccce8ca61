"""Clients that drive the MLP through a router or straight at a runtime, counting every outcome.

REST goes through httpx (HTTP/1.1 keep-alive), gRPC through grpc.aio on the runtime's own
generated stubs (HTTP/2). Each request records who answered (the V2 response's
`model_version`), its status, its request id and its latency, so a test can count shares
and failures instead of trusting a summary. Used by tests/e2e and bench/traffic.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
import httpx
import numpy as np
import orjson
from sluice_runtime.grpc.generated import inference_pb2 as pb
from sluice_runtime.grpc.generated import inference_pb2_grpc as pb_grpc

FEATURES = 64  # tests/models.mlp's input width
Z_999 = 3.2905  # two-sided 99.9% normal quantile


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request's fate: `status` is the HTTP status or gRPC code name (or the error type)."""

    ok: bool
    status: str
    version: str | None
    request_id: str | None
    seconds: float
    started: float  # time.perf_counter() when the request was sent
    top1: int | None = None
    attempts: int = 1


Send = Callable[[int], Coroutine[Any, Any, Outcome]]


def features(index: int, rows: int = 1) -> np.ndarray[Any, Any]:
    """Request `index`'s input: seeded, so two runs send the same rows."""
    return np.random.default_rng(index).standard_normal((rows, FEATURES)).astype(np.float32)


# The connection closed with no answer: what a client sees when the server closes an idle
# keep-alive connection just as the next request goes out on it (nginx does on reload).
_CLOSED_BEFORE_ANSWER = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


class RestClient:
    """V2 JSON inference over HTTP/1.1 keep-alive.

    With `retry`, a request whose connection closed before any answer is sent once more on a
    fresh connection, as RFC 9110 (9.2.2) lets a client do for idempotent requests and as
    HTTP/1.1 clients such as Go's do for reused connections. Outcomes say how many attempts
    each took, so a test can show the retried attempt never reached a runtime.
    """

    def __init__(
        self, base_url: str, model: str = "model", timeout: float = 10.0, *, retry: bool = False
    ) -> None:
        self.url = f"{base_url}/v2/models/{model}/infer"
        self._retry = retry
        self._client = httpx.AsyncClient(
            timeout=timeout, limits=httpx.Limits(max_connections=256, max_keepalive_connections=256)
        )

    async def infer(
        self, data: np.ndarray[Any, Any], headers: dict[str, str] | None = None
    ) -> Outcome:
        body = orjson.dumps(
            {
                "inputs": [
                    {
                        "name": "input",
                        "datatype": "FP32",
                        "shape": list(data.shape),
                        "data": data.reshape(-1).tolist(),
                    }
                ]
            }
        )
        headers = {"content-type": "application/json", **(headers or {})}
        started = time.perf_counter()
        attempts = 1
        while True:
            try:
                response = await self._client.post(self.url, content=body, headers=headers)
                break
            except _CLOSED_BEFORE_ANSWER as error:
                if self._retry and attempts == 1:
                    attempts += 1
                    continue
                failed = type(error).__name__
            except httpx.HTTPError as error:
                failed = type(error).__name__
            seconds = time.perf_counter() - started
            return Outcome(False, failed, None, None, seconds, started, attempts=attempts)
        seconds = time.perf_counter() - started
        request_id = response.headers.get("x-request-id")
        if response.status_code != 200:
            status = str(response.status_code)
            return Outcome(False, status, None, request_id, seconds, started, attempts=attempts)
        doc = orjson.loads(response.content)
        top1 = int(np.argmax(doc["outputs"][0]["data"]))
        version = doc["model_version"]
        return Outcome(True, "200", version, doc.get("id"), seconds, started, top1, attempts)

    async def aclose(self) -> None:
        await self._client.aclose()


class GrpcClient:
    """ModelInfer with raw_input_contents over one HTTP/2 channel."""

    def __init__(self, address: str, model: str = "model", timeout: float = 10.0) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)
        self._model = model
        self._timeout = timeout

    async def infer(
        self, data: np.ndarray[Any, Any], headers: dict[str, str] | None = None
    ) -> Outcome:
        request = pb.ModelInferRequest(
            model_name=self._model,
            inputs=[
                pb.ModelInferRequest.InferInputTensor(
                    name="input", datatype="FP32", shape=data.shape
                )
            ],
            raw_input_contents=[data.tobytes()],
        )
        started = time.perf_counter()
        try:
            response = await self._stub.ModelInfer(
                request,
                timeout=self._timeout,
                metadata=tuple((key.lower(), value) for key, value in (headers or {}).items()),
            )
        except grpc.aio.AioRpcError as error:
            code = error.code().name
            return Outcome(False, code, None, None, time.perf_counter() - started, started)
        seconds = time.perf_counter() - started
        top1 = int(np.argmax(np.frombuffer(response.raw_output_contents[0], dtype=np.float32)))
        return Outcome(True, "OK", response.model_version, response.id, seconds, started, top1)

    async def aclose(self) -> None:
        await self._channel.close()


class Target(Protocol):
    """Anything with REST and gRPC addresses: a runtime process or an nginx."""

    @property
    def http_url(self) -> str: ...

    @property
    def grpc_address(self) -> str: ...


Client = RestClient | GrpcClient


def connect(protocol: str, target: Target, *, retry: bool = False) -> Client:
    """A client of `target` over "rest" or "grpc" (`retry`: see RestClient)."""
    if protocol == "rest":
        return RestClient(target.http_url, retry=retry)
    if protocol == "grpc":
        return GrpcClient(target.grpc_address)
    raise ValueError(f"protocol must be rest or grpc, got {protocol!r}")


async def closed_loop(send: Send, total: int, concurrency: int) -> list[Outcome]:
    """`total` requests from `concurrency` callers, each sending its next as the last returns."""
    outcomes: list[Outcome] = []
    counter = iter(range(total))

    async def caller() -> None:
        for index in counter:
            outcomes.append(await send(index))

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return outcomes


async def open_loop(send: Send, rate: float, stop: asyncio.Event) -> list[Outcome]:
    """Requests started at a steady `rate` per second until `stop` is set, then all awaited.

    Start times follow the clock, not the answers, so a slow phase shows up as failures or
    latency rather than as a quietly lower rate.
    """
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[Outcome]] = []
    started = loop.time()
    index = 0
    while not stop.is_set():
        tasks.append(asyncio.create_task(send(index)))
        index += 1
        delay = started + index / rate - loop.time()
        # Always yield, even when behind schedule: the requests run on this same loop.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(delay, 0.0))
    return list(await asyncio.gather(*tasks))


def shares(outcomes: Sequence[Outcome]) -> Counter[str | None]:
    """How many answers each model version gave."""
    return Counter(outcome.version for outcome in outcomes if outcome.ok)


def failures(outcomes: Sequence[Outcome]) -> Counter[str]:
    """Failed requests by status."""
    return Counter(outcome.status for outcome in outcomes if not outcome.ok)


def binomial_interval(trials: int, probability: float, z: float = Z_999) -> tuple[float, float]:
    """The normal-approximation interval for a binomial count (99.9% by default)."""
    mean = trials * probability
    spread = z * math.sqrt(trials * probability * (1 - probability))
    return mean - spread, mean + spread


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of `values`, nearest rank."""
    ordered = sorted(values)
    rank = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return ordered[rank]
