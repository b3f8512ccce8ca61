"""The gRPC transport: Open Inference Protocol service (Triton field numbers) and health,
served by Sluice's own HTTP/2 implementation (connection.py) on the runtime's event loop."""

from sluice_runtime.grpc.health import HealthService
from sluice_runtime.grpc.server import GrpcServer
from sluice_runtime.grpc.servicer import InferenceService

__all__ = ["GrpcServer", "HealthService", "InferenceService"]
