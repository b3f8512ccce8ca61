"""The standard gRPC health service (grpc.health.v1), answering for the data plane.

Kubernetes gRPC probes and grpc_health_probe ask `Check`; meshes may `Watch`. Status is
SERVING only while the server has been switched on (`set_serving(True)` after warm-up) and
the data plane still says ready, so draining turns it NOT_SERVING at once. grpcio's own
servicer only changes status from a coroutine; this one flips synchronously, which is what
the server's shutdown path needs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

if TYPE_CHECKING:
    from sluice_runtime.dataplane import DataPlane

SERVICE_NAME = "inference.GRPCInferenceService"
_SERVICES = frozenset({"", SERVICE_NAME})  # "" is the whole server


class HealthServicer(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    """grpc.health.v1.Health for the overall server and the inference service."""

    def __init__(self, dataplane: DataPlane) -> None:
        self._dataplane = dataplane
        self._serving = False
        self._changed = asyncio.Event()

    def set_serving(self, serving: bool) -> None:
        """Switch the status; watchers hear of it on their next turn of the loop."""
        self._serving = serving
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def status(self, service: str) -> Any:
        """The ServingStatus of one service name."""
        if service not in _SERVICES:
            return health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
        if self._serving and self._dataplane.ready():
            return health_pb2.HealthCheckResponse.SERVING
        return health_pb2.HealthCheckResponse.NOT_SERVING

    async def Check(self, request: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        if request.service not in _SERVICES:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=self.status(request.service))

    async def Watch(  # noqa: N802
        self, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        last = None
        while True:
            changed = self._changed
            status = self.status(request.service)
            if status != last:
                yield health_pb2.HealthCheckResponse(status=status)
                last = status
            await changed.wait()
