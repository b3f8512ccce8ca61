"""The standard gRPC health service (grpc.health.v1), answering for the data plane.

Kubernetes gRPC probes and grpc_health_probe ask `Check`; meshes may `Watch`. Status is
SERVING only while the server has been switched on (`set_serving(True)` after warm-up) and
the data plane still says ready, so draining turns it NOT_SERVING at once, synchronously,
which is what the server's shutdown path needs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from sluice_runtime.grpc.connection import Method
from sluice_runtime.grpc.generated import health_pb2
from sluice_runtime.grpc.status import GrpcError, StatusCode
from sluice_runtime.grpc.wire import RequestHead, parse

if TYPE_CHECKING:
    from sluice_runtime.dataplane import DataPlane

SERVICE_NAME = "inference.GRPCInferenceService"
_SERVICES = frozenset({"", SERVICE_NAME})  # "" is the whole server
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class HealthService:
    """grpc.health.v1.Health for the overall server and the inference service."""

    def __init__(self, dataplane: DataPlane) -> None:
        self._dataplane = dataplane
        self._serving = False
        self._changed = asyncio.Event()

    def methods(self) -> dict[str, Method]:
        """The service's methods by their HTTP/2 path."""
        return {
            "/grpc.health.v1.Health/Check": Method(unary=self.check),
            "/grpc.health.v1.Health/Watch": Method(stream=self.watch),
        }

    def set_serving(self, serving: bool) -> None:
        """Switch the status; watchers hear of it on their next turn of the loop."""
        self._serving = serving
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def status(self, service: str) -> Any:
        """The ServingStatus of one service name."""
        if service not in _SERVICES:
            return SERVICE_UNKNOWN
        if self._serving and self._dataplane.ready():
            return SERVING
        return NOT_SERVING

    async def check(self, body: bytes, head: RequestHead) -> bytes:
        request = parse(health_pb2.HealthCheckRequest, body)
        if request.service not in _SERVICES:
            raise GrpcError(StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        answer = health_pb2.HealthCheckResponse(status=self.status(request.service))
        return bytes(answer.SerializeToString())

    async def watch(self, body: bytes, head: RequestHead) -> AsyncIterator[bytes]:
        service = parse(health_pb2.HealthCheckRequest, body).service
        last = None
        while True:
            changed = self._changed
            status = self.status(service)
            if status != last:
                yield bytes(health_pb2.HealthCheckResponse(status=status).SerializeToString())
                last = status
            await changed.wait()
