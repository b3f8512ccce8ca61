"""Model registries: resolve a pinned URI to a verified local ONNX file.

One module per URI scheme; `fetch_model` dispatches on the scheme. Every
registry verifies what it hands back against the pinned digest, and every
remote one goes through the same content-addressed cache and retry loop.
"""

from sluice_runtime.registry.base import FetchedModel, fetch_model, resolve_model
from sluice_runtime.registry.metrics import RegistryMetrics
from sluice_runtime.registry.options import FetchOptions

__all__ = ["FetchOptions", "FetchedModel", "RegistryMetrics", "fetch_model", "resolve_model"]
