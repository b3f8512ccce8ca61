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
from typing import Any

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
    top1: int | None = None


Send = Callable[[int], Coroutine[Any, Any, Outcome]]


def features(index: int, rows: int = 1) -> np.ndarray[Any, Any]:
    """Request `index`'s input: seeded, so two runs send the same rows."""
    return np.random.default_rng(index).standard_normal((rows, FEATURES)).astype(np.float32)


class RestClient:
    """V2 JSON inference over HTTP/1.1 keep-alive."""

    def __init__(self, base_url: str, model: str = "model", timeout: float = 10.0) -> None:
        self.url = f"{base_url}/v2/models/{model}/infer"
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
        started = time.perf_counter()
        try:
            response = await self._client.post(
                self.url,
                content=body,
                headers={"content-type": "application/json", **(headers or {})},
            )
        except httpx.HTTPError as error:
            return Outcome(False, type(error).__name__, None, None, time.perf_counter() - started)
        seconds = time.perf_counter() - started
        request_id = response.headers.get("x-request-id")
        if response.status_code != 200:
            return Outcome(False, str(response.status_code), None, request_id, seconds)
        doc = orjson.loads(response.content)
        scores = doc["outputs"][0]["data"]
        return Outcome(
            True, "200", doc["model_version"], doc.get("id"), seconds, int(np.argmax(scores))
        )

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
        self, data: np.ndarray[Any, Any], metadata: Sequence[tuple[str, str]] = ()
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
                request, timeout=self._timeout, metadata=tuple(metadata)
            )
        except grpc.aio.AioRpcError as error:
            return Outcome(False, error.code().name, None, None, time.perf_counter() - started)
        seconds = time.perf_counter() - started
        scores = np.frombuffer(response.raw_output_contents[0], dtype=np.float32)
        return Outcome(
            True, "OK", response.model_version, response.id, seconds, int(np.argmax(scores))
        )

    async def aclose(self) -> None:
        await self._channel.close()


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
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
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
