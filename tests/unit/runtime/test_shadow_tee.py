"""The tee's queue and outcomes against small real HTTP servers on 127.0.0.1.

Each server is an asyncio socket server speaking just enough HTTP/1.1: it answers with a
chosen status, or holds the request unanswered. What it receives is decoded with the
shadow codec, so these tests also prove the tee sends what the shadow route reads.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import numpy as np
from prometheus_client import CollectorRegistry
from sluice_runtime.rest.shadow_codec import decode_shadow_copy, encode_shadow_copy
from sluice_runtime.shadow import (
    DROPPED,
    FAILED,
    REJECTED,
    SENT,
    TIMEOUT,
    Sampler,
    ShadowCopy,
    ShadowMetrics,
    ShadowTee,
)
from sluice_runtime.tensors import InferRequest, InferResponse, Tensor


def answered(index: int) -> tuple[InferRequest, InferResponse]:
    data = np.full((1, 4), index, dtype=np.float32)
    request = InferRequest(id=f"r{index}", inputs=[Tensor("x", "FP32", (1, 4), data)])
    output = Tensor("y", "FP32", (1, 2), np.array([[index, 0.5]], dtype=np.float32))
    return request, InferResponse("m", "1", f"r{index}", [output])


@asynccontextmanager
async def http_server(status: int | None) -> AsyncIterator[tuple[str, list[ShadowCopy]]]:
    """Answers every request with `status` (None: never answers); yields (url, copies seen)."""
    seen: list[ShadowCopy] = []
    held: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            headers = dict(
                line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line
            )
            lowered = {key.lower(): value for key, value in headers.items()}
            body = await reader.readexactly(int(lowered["content-length"]))
            seen.append(
                decode_shadow_copy(body, lowered["inference-header-content-length"], "none")
            )
            if status is None:
                held.append(writer)
                return
            writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 2\r\n\r\n{{}}".encode())
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        for writer in held:
            writer.close()
        server.close()


def counts(registry: CollectorRegistry) -> dict[str, float]:
    return {
        result: registry.get_sample_value(
            "sluice_shadow_copies_total", {"model": "m", "version": "1", "result": result}
        )
        or 0.0
        for result in (SENT, REJECTED, TIMEOUT, FAILED, DROPPED)
    }


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def make_tee(
    url: str,
    registry: CollectorRegistry,
    percent: float = 100,
    queue_size: int = 256,
    workers: int = 4,
    timeout_seconds: float = 1.0,
) -> ShadowTee:
    return ShadowTee(
        url,
        Sampler(percent, random.Random(3)),
        ShadowMetrics(registry, "m", "1"),
        encode_shadow_copy,
        queue_size=queue_size,
        workers=workers,
        timeout_seconds=timeout_seconds,
    )


def test_copies_reach_the_shadow_with_the_primary_answer() -> None:
    async def scenario() -> None:
        registry = CollectorRegistry()
        async with http_server(200) as (url, seen):
            tee = make_tee(url, registry)
            await tee.start()
            for index in range(5):
                tee.offer(*answered(index), 0.01)
            await until(lambda: counts(registry)[SENT] == 5)
            await tee.close()
        assert sorted(copy.request.id for copy in seen) == [f"r{i}" for i in range(5)]
        copy = next(c for c in seen if c.request.id == "r3")
        assert copy.primary_outputs[0].data.tolist() == [[3.0, 0.5]]
        assert (copy.primary_model, copy.primary_version) == ("m", "1")

    asyncio.run(scenario())


def test_unsampled_requests_are_not_sent() -> None:
    async def scenario() -> None:
        registry = CollectorRegistry()
        async with http_server(200) as (url, seen):
            tee = make_tee(url, registry, percent=0)
            await tee.start()
            for index in range(50):
                tee.offer(*answered(index), 0.01)
            await tee.close()
        assert seen == []
        assert sum(counts(registry).values()) == 0

    asyncio.run(scenario())


def test_error_status_counts_as_rejected() -> None:
    async def scenario() -> None:
        registry = CollectorRegistry()
        async with http_server(500) as (url, _):
            tee = make_tee(url, registry)
            await tee.start()
            for index in range(3):
                tee.offer(*answered(index), 0.01)
            await until(lambda: counts(registry)[REJECTED] == 3)
            await tee.close()

    asyncio.run(scenario())


def test_refused_connection_counts_as_failed() -> None:
    async def scenario() -> None:
        registry = CollectorRegistry()
        async with http_server(200) as (url, _):
            pass  # closed again: nothing listens on its port any more
        tee = make_tee(url, registry)
        await tee.start()
        tee.offer(*answered(0), 0.01)
        await until(lambda: counts(registry)[FAILED] == 1)
        await tee.close()

    asyncio.run(scenario())


def test_a_silent_shadow_fills_the_queue_and_further_copies_are_dropped() -> None:
    async def scenario() -> None:
        registry = CollectorRegistry()
        async with http_server(None) as (url, seen):
            tee = make_tee(url, registry, queue_size=2, workers=1, timeout_seconds=0.5)
            await tee.start()
            tee.offer(*answered(0), 0.01)
            await until(lambda: len(seen) == 1)  # the worker holds copy 0, waiting
            for index in range(1, 10):
                tee.offer(*answered(index), 0.01)  # 2 queue up, 7 are dropped at once
            assert counts(registry)[DROPPED] == 7
            await until(lambda: counts(registry)[TIMEOUT] >= 1)
            await tee.close(grace_seconds=0.0)
        final = counts(registry)
        assert final[DROPPED] + final[TIMEOUT] + final[SENT] == 10
        assert final[SENT] == 0

    asyncio.run(scenario())
