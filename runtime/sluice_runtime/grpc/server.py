"""The gRPC listener: a table of methods served on the event loop.

`GrpcServer` accepts connections on a socket the caller bound (so a port in use is a clear
error before anything starts), serves each with a `GrpcConnection`, and drains: GOAWAY to
every client (no new calls; grpc clients move to another endpoint without failing), running
calls finish within the grace period, then whatever is left is closed.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping

from sluice_runtime.grpc.connection import GrpcConnection, Limits, Method


class GrpcServer:
    """gRPC over our own HTTP/2 (connection.py) for `methods`, keyed by /service/method."""

    def __init__(self, methods: Mapping[str, Method], max_message_bytes: int) -> None:
        self._methods = methods
        self._limits = Limits(max_message_bytes=max_message_bytes)
        self._connections: set[GrpcConnection] = set()
        self._server: asyncio.AbstractServer | None = None

    async def start(self, sock: socket.socket) -> None:
        """Serve connections on the bound socket `sock`."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._connect, sock=sock)

    async def stop(self, grace: float) -> None:
        """Stop accepting, let running calls finish for up to `grace` seconds, then close."""
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.go_away()
        waiting = [connection.closed for connection in self._connections]
        if waiting:
            await asyncio.wait(waiting, timeout=grace)
        for connection in list(self._connections):
            connection.abort()

    def _connect(self) -> GrpcConnection:
        connection = GrpcConnection(self._methods, self._limits, self._connections.discard)
        self._connections.add(connection)
        return connection
