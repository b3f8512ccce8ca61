"""What the REST and gRPC transports share beyond tensor encodings: request ids and logs.

Every request gets an id, the client's when it sent one (X-Request-ID header or gRPC
metadata, or the protocol's request `id`), so one line in the log ties to one client call.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from sluice_runtime.errors import InvalidInput

REQUEST_ID_HEADER = "x-request-id"  # HTTP header and gRPC metadata key alike

log = logging.getLogger("sluice_runtime.requests")


def new_request_id() -> str:
    """A fresh id for a request that came without one: 128 random bits, as 32 hex digits.

    Not `uuid4()`: it reads the kernel's random source per call, several times the cost;
    an id only has to be unique, and `random` is seeded from that source (again in a fork).
    """
    return f"{random.getrandbits(128):032x}"


_UNSUPPORTED_PARAMETERS = {
    "shared_memory_region": "the shared memory extension is not supported",
    "classification": "the classification extension is not supported",
}


def check_parameters(parameters: dict[str, Any], owner: str) -> dict[str, Any]:
    """Refuses parameters that ask for protocol extensions Sluice does not implement.

    Ignoring them would answer something other than what the client asked for.
    """
    for key, problem in _UNSUPPORTED_PARAMETERS.items():
        if key in parameters:
            raise InvalidInput(f"{owner}: {problem} (parameter {key!r})")
    return parameters


def log_request(protocol: str, request_id: str, code: str, seconds: float, error: str) -> None:
    """One line per inference: DEBUG when it succeeded, INFO for client errors, else WARNING.

    `code` is the HTTP status or gRPC status name; `error` is empty on success.
    """
    if not error:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s request %s: %s in %.6fs", protocol, request_id, code, seconds)
        return
    level = logging.WARNING if code in _SERVER_FAULTS else logging.INFO
    log.log(level, "%s request %s: %s in %.6fs: %s", protocol, request_id, code, seconds, error)


_SERVER_FAULTS = frozenset({"500", "503", "INTERNAL", "UNAVAILABLE"})
