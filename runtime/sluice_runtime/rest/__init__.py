"""The REST transport: Open Inference Protocol V2 (JSON and binary tensors), V1 and /metrics."""

from sluice_runtime.rest.app import create_rest_app

__all__ = ["create_rest_app"]
