"""Run REST (uvicorn) and gRPC (our HTTP/2 server) for one data plane in one event loop.

Order of life: both listeners up first (liveness answers at once), then the model
loads and warms up (readiness turns true), then serving until `stop` is set; then
readiness turns false at once, the listeners close, in-flight requests complete
within the drain period, and the batcher stops. Signal handling belongs to the
caller (the CLI), which sets `stop`; nothing here touches signals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from functools import partial

import uvicorn
from prometheus_client import CollectorRegistry, generate_latest

from sluice_runtime.dataplane import DataPlane
from sluice_runtime.grpc import GrpcServer, HealthService, InferenceService
from sluice_runtime.listeners import bind_listeners
from sluice_runtime.metrics import RuntimeMetrics
from sluice_runtime.rest import create_rest_app
from sluice_runtime.rest.shadow_codec import encode_shadow_copy
from sluice_runtime.settings import RuntimeSettings
from sluice_runtime.shadow import Sampler, ShadowMetrics, ShadowTee
from sluice_runtime.supervisor import WorkerSlot
from sluice_runtime.worker_metrics import WorkerMetrics

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1


class _HttpServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the CLI owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def shadow_tee(settings: RuntimeSettings, metrics: ShadowMetrics) -> ShadowTee | None:
    """The tee to the shadow when one is configured with a share above zero."""
    if settings.shadow_url is None or settings.shadow_percent <= 0:
        return None
    log.info("shadow: copying %g%% of requests to %s", settings.shadow_percent, settings.shadow_url)
    return ShadowTee(
        settings.shadow_url, Sampler(settings.shadow_percent), metrics, encode_shadow_copy
    )


async def serve(
    settings: RuntimeSettings,
    stop: asyncio.Event,
    *,
    sockets: list[socket.socket] | None = None,
    worker: WorkerSlot | None = None,
) -> int:
    """Serve until `stop` is set or the model fails to load; returns the exit code.

    `sockets` are listeners a supervisor bound already (HTTP, gRPC); `worker` makes
    /metrics answer for every worker of the set (worker_metrics.py).
    """
    metrics = RuntimeMetrics(CollectorRegistry(), settings.model_name, settings.model_version)
    tee = shadow_tee(settings, metrics.shadow)
    dataplane = DataPlane(settings, metrics, tee)
    sockets = sockets if sockets is not None else bind_listeners(settings)
    if sockets is None:
        return EXIT_FAILED
    peers = None
    if worker is not None:
        peers = WorkerMetrics(
            worker.folder,
            worker.index,
            settings.workers,
            partial(generate_latest, metrics.registry),
        )
        await peers.start()
    app = create_rest_app(
        dataplane,
        metrics,
        max_request_bytes=settings.max_request_bytes,
        exposition=None if peers is None else peers.exposition,
    )
    http_socket, grpc_socket = sockets
    health = HealthService(dataplane)
    methods = InferenceService(dataplane, metrics).methods() | health.methods()
    grpc_server = GrpcServer(methods, settings.max_request_bytes)
    http = _HttpServer(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.http_port,
            loop="none",
            http="httptools",
            lifespan="off",
            access_log=False,
            log_config=None,
            # Nothing here reads the client address (no access log), so skip rewriting it
            # from X-Forwarded-For on every request.
            proxy_headers=False,
            # No "server: uvicorn" banner: it tells a scanner what to try, and each answer
            # header costs uvicorn two regex checks.
            server_header=False,
            timeout_graceful_shutdown=int(max(1, settings.drain_seconds)),
        )
    )
    await grpc_server.start(grpc_socket)
    if tee is not None:
        await tee.start()
    log.info(
        "listening: HTTP on %s:%d, gRPC on %s:%d",
        settings.host,
        http_socket.getsockname()[1],
        settings.host,
        grpc_socket.getsockname()[1],
    )
    http_task = asyncio.create_task(http.serve(sockets=[http_socket]), name="http")
    load_task = asyncio.create_task(dataplane.load(), name="load")
    stop_task = asyncio.create_task(stop.wait(), name="stop")
    code = EXIT_OK
    try:
        await asyncio.wait({load_task, stop_task, http_task}, return_when=asyncio.FIRST_COMPLETED)
        if load_task.done():
            failure = load_task.exception()
            if failure is not None:
                log.error("model load failed: %s", failure)
                code = EXIT_FAILED
            else:
                health.set_serving(True)
                await asyncio.wait({stop_task, http_task}, return_when=asyncio.FIRST_COMPLETED)
        if http_task.done() and not stop_task.done():
            log.error("the HTTP server stopped by itself")
            code = code or EXIT_FAILED
    finally:
        log.info("shutting down: draining for at most %.1fs", settings.drain_seconds)
        dataplane.begin_drain()
        health.set_serving(False)
        load_task.cancel()
        stop_task.cancel()
        http.should_exit = True
        await asyncio.gather(
            grpc_server.stop(settings.drain_seconds), http_task, return_exceptions=True
        )
        await dataplane.close()
        if tee is not None:
            await tee.close()
        if peers is not None:
            await peers.close()
        log.info("stopped")
    return code
