"""Shadow traffic: copies of answered requests sent to a shadow model, and its verdict on them.

Two runtimes take part. The *primary* (a serving revision started with `--shadow-url`) answers
its client first; only then does `ShadowTee.offer` sample the request and put a copy, with the
primary's own outputs and latency, on a bounded queue. A few worker tasks send the copies in
the background with a short timeout. A full queue drops the copy and counts it: a slow or dead
shadow costs the primary a counter increment, never a client's latency or success.

The *shadow* runtime receives a copy, runs the same inputs on its own model and compares its
outputs with the primary's (`comparison.py`), recording requests compared, top-1 agreement,
absolute and relative difference histograms per output, and its latency beside the primary's.
Its answer goes nowhere else. Both sides' series live in `ShadowMetrics`.

This module knows no wire format: the REST codec (`rest/shadow_codec.py`) encodes a
`ShadowCopy` for the tee and decodes it for the shadow route, as it does for infer requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from time import perf_counter

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sluice_runtime.comparison import OutputComparison, compare_outputs, top1_totals
from sluice_runtime.errors import SluiceError
from sluice_runtime.tensors import InferRequest, InferResponse, RequestedOutput, Tensor

log = logging.getLogger(__name__)

# Exact equality lands in le="0"; the rest spans float rounding up to different answers.
_DIFF_BUCKETS = (0.0, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0)
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

# Outcomes of a copy on the primary's side (label `result` of sluice_shadow_copies_total).
SENT = "sent"  # the shadow answered 2xx
REJECTED = "rejected"  # the shadow answered with an error status
TIMEOUT = "timeout"
FAILED = "failed"  # connection refused, reset, or any other transport error
DROPPED = "dropped"  # the queue was full (or the runtime stopped before it went out)


@dataclass(slots=True)
class ShadowCopy:
    """A request the primary answered, with what it answered and how long that took."""

    request: InferRequest
    primary_outputs: list[Tensor]
    primary_model: str
    primary_version: str
    primary_latency_seconds: float


@dataclass(frozen=True, slots=True)
class EncodedCopy:
    """A copy on the wire: the path under the shadow's base URL, the body and its headers."""

    path: str
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)


Encoder = Callable[[ShadowCopy], EncodedCopy]
Infer = Callable[[InferRequest], Awaitable[InferResponse]]


class Sampler:
    """Takes each request independently with probability `percent`/100 (0 and 100 exact)."""

    def __init__(self, percent: float, rng: random.Random | None = None) -> None:
        if not 0.0 <= percent <= 100.0:
            raise ValueError(f"shadow percent must be within 0..100, got {percent}")
        self.percent = percent
        self._rng = rng or random.Random()

    def take(self) -> bool:
        """Whether this request is copied."""
        if self.percent >= 100.0:
            return True
        return self.percent > 0.0 and self._rng.random() * 100.0 < self.percent


class ShadowMetrics:
    """sluice_shadow_* series of one runtime: what it sent as a primary, what it saw as a shadow.

    Labels model and version name this runtime; `primary_version` names the revision whose
    answers a shadow compared itself with, so one shadow can be judged against each.
    """

    def __init__(self, registry: CollectorRegistry, model: str, version: str) -> None:
        self.model = model
        self.version = version
        bound = (model, version)
        self._copies = Counter(
            "sluice_shadow_copies",
            "Copies of answered requests offered to the shadow, by outcome.",
            ["model", "version", "result"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "sluice_shadow_queue_depth",
            "Copies waiting to be sent to the shadow.",
            ["model", "version"],
            registry=registry,
        ).labels(*bound)
        compared = ["model", "version", "primary_version"]
        self._requests = Counter(
            "sluice_shadow_requests",
            "Copies this runtime received as a shadow, by result (compared or the error status).",
            [*compared, "result"],
            registry=registry,
        )
        self._top1_rows = Counter(
            "sluice_shadow_top1_rows",
            "Rows (or labels) whose top-1 class was compared with the primary's.",
            [*compared, "output"],
            registry=registry,
        )
        self._top1_agreements = Counter(
            "sluice_shadow_top1_agreements",
            "Compared rows (or labels) whose top-1 class matched the primary's.",
            [*compared, "output"],
            registry=registry,
        )
        self._abs_diff = Histogram(
            "sluice_shadow_abs_diff",
            "Per request, max |shadow - primary| over a float output's elements.",
            [*compared, "output"],
            buckets=_DIFF_BUCKETS,
            registry=registry,
        )
        self._rel_diff = Histogram(
            "sluice_shadow_rel_diff",
            "Per request, the max absolute difference relative to the largest |primary| element.",
            [*compared, "output"],
            buckets=_DIFF_BUCKETS,
            registry=registry,
        )
        self._mismatches = Counter(
            "sluice_shadow_output_mismatches",
            "Outputs that could not be compared (missing, other shape, float against label).",
            [*compared, "output", "reason"],
            registry=registry,
        )
        self._latency = Histogram(
            "sluice_shadow_latency_seconds",
            "Inference latency of a compared request on each side (side=primary or shadow).",
            [*compared, "side"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )

    def copy(self, result: str) -> None:
        """Count one copy's outcome on the primary's side."""
        self._copies.labels(self.model, self.version, result).inc()

    def failed(self, primary_version: str, result: str) -> None:
        """Count a copy the shadow could not run (result: its error status)."""
        self._requests.labels(self.model, self.version, primary_version, result).inc()

    def compared(
        self,
        copy: ShadowCopy,
        comparisons: Sequence[OutputComparison],
        shadow_latency_seconds: float,
    ) -> None:
        """Record one compared copy: count, per-output figures and both latencies."""
        labels = (self.model, self.version, copy.primary_version)
        self._requests.labels(*labels, "compared").inc()
        for item in comparisons:
            if item.mismatch is not None:
                self._mismatches.labels(*labels, item.name, item.mismatch).inc()
                continue
            if item.top1_rows:
                self._top1_rows.labels(*labels, item.name).inc(item.top1_rows)
                self._top1_agreements.labels(*labels, item.name).inc(item.top1_agreements)
            if item.abs_diff is not None and item.rel_diff is not None:
                self._abs_diff.labels(*labels, item.name).observe(item.abs_diff)
                self._rel_diff.labels(*labels, item.name).observe(item.rel_diff)
        self._latency.labels(*labels, "primary").observe(copy.primary_latency_seconds)
        self._latency.labels(*labels, "shadow").observe(shadow_latency_seconds)


async def compare_copy(
    infer: Infer, metrics: ShadowMetrics, copy: ShadowCopy
) -> list[OutputComparison]:
    """Run a copy's inputs on this (shadow) model and record how its answer compares.

    The shadow is asked for exactly the outputs the primary returned. An error from `infer`
    is counted under its HTTP status and propagates, so the transport answers it.
    """
    request = InferRequest(
        id=copy.request.id,
        inputs=copy.request.inputs,
        outputs=[RequestedOutput(tensor.name) for tensor in copy.primary_outputs],
        parameters=copy.request.parameters,
    )
    started = perf_counter()
    try:
        response = await infer(request)
    except SluiceError as error:
        metrics.failed(copy.primary_version, str(error.http_status))
        raise
    seconds = perf_counter() - started
    comparisons = compare_outputs(copy.primary_outputs, response.outputs)
    metrics.compared(copy, comparisons, seconds)
    return comparisons


def summary(comparisons: Sequence[OutputComparison]) -> dict[str, object]:
    """The shadow route's answer: figures for whoever reads it by hand (the primary does not)."""
    rows, agreements = top1_totals(comparisons)
    return {
        "top1_rows": rows,
        "top1_agreements": agreements,
        "outputs": [
            {
                "name": item.name,
                "abs_diff": item.abs_diff,
                "rel_diff": item.rel_diff,
                "top1_rows": item.top1_rows,
                "top1_agreements": item.top1_agreements,
                "mismatch": item.mismatch,
            }
            for item in comparisons
        ],
    }


class ShadowTee:
    """Sends sampled copies of answered requests to the shadow, off the client's path.

    `offer` never awaits and never raises: it samples, enqueues or counts a drop. `start`
    and `close` run inside the server's event loop, which the workers share.
    """

    def __init__(
        self,
        url: str,
        sampler: Sampler,
        metrics: ShadowMetrics,
        encode: Encoder,
        *,
        queue_size: int = 256,
        workers: int = 4,
        timeout_seconds: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if queue_size < 1 or workers < 1 or timeout_seconds <= 0:
            raise ValueError("shadow tee: queue_size and workers must be >= 1, timeout > 0")
        self.url = url.rstrip("/")
        self._sampler = sampler
        self._metrics = metrics
        self._encode = encode
        self._queue_size = queue_size
        self._workers = workers
        self._timeout = timeout_seconds
        self._transport = transport
        self._queue: asyncio.Queue[ShadowCopy] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        """Open the connection pool and start the workers."""
        queue: asyncio.Queue[ShadowCopy] = asyncio.Queue(self._queue_size)
        client = httpx.AsyncClient(
            base_url=self.url,
            timeout=self._timeout,
            limits=httpx.Limits(
                max_connections=self._workers, max_keepalive_connections=self._workers
            ),
            transport=self._transport,
        )
        self._queue, self._client = queue, client
        self._tasks = [
            asyncio.create_task(self._work(queue, client), name=f"shadow-tee-{index}")
            for index in range(self._workers)
        ]

    def offer(self, request: InferRequest, response: InferResponse, latency_seconds: float) -> None:
        """Queue a copy if this request is sampled; a full queue drops and counts it."""
        if self._queue is None or not self._sampler.take():
            return
        copy = ShadowCopy(
            request=request,
            primary_outputs=response.outputs,
            primary_model=response.model_name,
            primary_version=response.model_version,
            primary_latency_seconds=latency_seconds,
        )
        try:
            self._queue.put_nowait(copy)
        except asyncio.QueueFull:
            self._metrics.copy(DROPPED)
            return
        self._metrics.queue_depth.set(self._queue.qsize())

    async def close(self, grace_seconds: float = 1.0) -> None:
        """Give queued copies `grace_seconds` to go out, then stop; what is left is dropped."""
        queue, self._queue = self._queue, None
        if queue is not None and self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(queue.join(), grace_seconds)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if queue is not None:
            for _ in range(queue.qsize()):
                self._metrics.copy(DROPPED)
            self._metrics.queue_depth.set(0)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _work(self, queue: asyncio.Queue[ShadowCopy], client: httpx.AsyncClient) -> None:
        while True:
            copy = await queue.get()
            result = DROPPED  # stays so when close() cancels the send
            try:
                result = await self._send(client, copy)
            finally:
                self._metrics.copy(result)
                queue.task_done()
                self._metrics.queue_depth.set(queue.qsize())

    async def _send(self, client: httpx.AsyncClient, copy: ShadowCopy) -> str:
        try:
            encoded = self._encode(copy)
            response = await client.post(
                encoded.path, content=encoded.content, headers=encoded.headers
            )
        except httpx.TimeoutException:
            return TIMEOUT
        except httpx.HTTPError as error:
            log.debug("shadow copy %s not sent: %s", copy.request.id, error)
            return FAILED
        except Exception:
            log.exception("shadow copy %s could not be encoded", copy.request.id)
            return FAILED
        if response.is_success:
            return SENT
        log.debug("shadow refused copy %s: %s", copy.request.id, response.status_code)
        return REJECTED
