"""Model registries: resolve a pinned URI to a verified local ONNX file.

One module per URI scheme; `fetch_model` dispatches on the scheme. Every
registry verifies what it hands back against the pinned digest.
"""

from sluice_runtime.registry.base import FetchedModel, fetch_model

__all__ = ["FetchedModel", "fetch_model"]
