"""The listening sockets of a runtime, bound before anything else starts.

Its own module, importing nothing heavy: the `--workers` supervisor binds them and then
forks, and must not have loaded onnxruntime (whose import starts threads) before it does.
"""

from __future__ import annotations

import logging
import socket

from sluice_runtime.settings import RuntimeSettings

log = logging.getLogger(__name__)


def listen(host: str, port: int) -> socket.socket:
    """Bind a listening socket here, so a port in use is a clear error before anything starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=2048)


def bind_listeners(settings: RuntimeSettings) -> list[socket.socket] | None:
    """The HTTP and gRPC listening sockets, or None (logged) when a port cannot be had."""
    sockets: list[socket.socket] = []
    for name, port in (("HTTP", settings.http_port), ("gRPC", settings.grpc_port)):
        try:
            sockets.append(listen(settings.host, port))
        except OSError as error:
            for bound in sockets:
                bound.close()
            log.error("cannot listen for %s on %s:%d: %s", name, settings.host, port, error)
            return None
    return sockets
