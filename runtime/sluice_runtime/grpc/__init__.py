"""The gRPC transport: Open Inference Protocol service (Triton field numbers) and health."""

from sluice_runtime.grpc.server import create_grpc_server, set_serving

__all__ = ["create_grpc_server", "set_serving"]
