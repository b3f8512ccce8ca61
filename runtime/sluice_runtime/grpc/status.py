"""gRPC status codes and the error a handler raises to end a call with one.

Our own enum rather than grpcio's: the runtime serves gRPC with its own HTTP/2 server and
does not depend on grpcio. Values are the protocol's (doc/statuscodes.md in grpc/grpc).
"""

from __future__ import annotations

import enum

from sluice_runtime.errors import SluiceError


class StatusCode(enum.IntEnum):
    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class GrpcError(Exception):
    """Ends a call with `code` and `message`; `trailers` are extra trailing metadata."""

    def __init__(
        self, code: StatusCode, message: str, trailers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.trailers = trailers


def status_code(error: SluiceError) -> StatusCode:
    """The gRPC status a data plane error maps to (errors.py names it)."""
    return StatusCode[error.grpc_code]
