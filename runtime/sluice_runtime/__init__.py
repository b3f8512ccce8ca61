"""Sluice runtime: serves one pinned ONNX model over the Open Inference Protocol."""

__version__ = "0.1.0"

__all__ = ["__version__"]
