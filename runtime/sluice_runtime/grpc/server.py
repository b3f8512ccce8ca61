"""Builds the grpc.aio server for one data plane: inference service plus health.

`create_grpc_server` returns a plain grpc.aio.Server (the caller starts and stops it);
`set_serving` flips its health status. The server remembers its health servicer in a
weak map, so no handle besides the server needs passing around and nothing outlives it.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health_pb2_grpc

from sluice_runtime.grpc.generated import inference_pb2_grpc as pb_grpc
from sluice_runtime.grpc.health import HealthServicer
from sluice_runtime.grpc.servicer import InferenceServicer
from sluice_runtime.metrics import RuntimeMetrics

if TYPE_CHECKING:
    from sluice_runtime.dataplane import DataPlane

_HEALTH: weakref.WeakKeyDictionary[grpc.aio.Server, HealthServicer] = weakref.WeakKeyDictionary()


def create_grpc_server(
    dataplane: DataPlane, metrics: RuntimeMetrics, *, address: str, max_message_bytes: int
) -> grpc.aio.Server:
    """A server bound to `address` (host:port), NOT_SERVING until `set_serving(server, True)`.

    Requests up to `max_message_bytes` are accepted (gRPC's default is 4 MiB, too small for
    large tensors); answers are not capped, clients set their own receive limit.
    """
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", -1),
        ]
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(
        InferenceServicer(dataplane, metrics), server
    )
    health = HealthServicer(dataplane)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    server.add_insecure_port(address)
    _HEALTH[server] = health
    return server


def set_serving(server: grpc.aio.Server, serving: bool) -> None:
    """SERVING after warm-up, NOT_SERVING from the start of draining (health service)."""
    _HEALTH[server].set_serving(serving)
