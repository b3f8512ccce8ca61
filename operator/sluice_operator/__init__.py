"""Sluice operator: reconciles InferenceService resources into revisions and traffic."""

__version__ = "0.1.0"

__all__ = ["__version__"]
