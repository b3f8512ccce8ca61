"""Errors the data plane raises, each mapped once to its HTTP status and gRPC code.

Transports translate these and nothing else; any other exception is a bug and
answers 500 / INTERNAL.
"""

from __future__ import annotations


class SluiceError(Exception):
    """An error with a client-facing message and its protocol status codes."""

    http_status: int = 500
    grpc_code: str = "INTERNAL"  # a grpc.StatusCode member name; errors.py stays grpc-free

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(SluiceError):
    """The request does not match the model: name, datatype, shape or encoding."""

    http_status = 400
    grpc_code = "INVALID_ARGUMENT"


class ModelNotFound(SluiceError):
    """The request names a model or version this runtime does not serve."""

    http_status = 404
    grpc_code = "NOT_FOUND"


class PayloadTooLarge(SluiceError):
    """The request body exceeds the configured limit."""

    http_status = 413
    grpc_code = "RESOURCE_EXHAUSTED"


class QueueFull(SluiceError):
    """The bounded queue is full: shed now rather than time out later."""

    http_status = 429
    grpc_code = "RESOURCE_EXHAUSTED"


class NotReady(SluiceError):
    """The model is loading, warming up or draining."""

    http_status = 503
    grpc_code = "UNAVAILABLE"


class ModelLoadError(SluiceError):
    """The model could not be fetched, verified or loaded; it is never served."""


class DigestMismatch(ModelLoadError):
    """The fetched bytes do not hash to the pinned digest."""

    def __init__(self, uri: str, expected: str, actual: str) -> None:
        super().__init__(
            f"digest mismatch for {uri}: expected {expected}, got {actual}; refusing to serve"
        )
        self.expected = expected
        self.actual = actual
