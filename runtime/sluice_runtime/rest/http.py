"""HTTP plumbing for the REST transport: bounded body reads, JSON answers, request ids.

Kept apart from the routes so the hot path stays visible: a body is read once into bytes
(refused as soon as it passes the limit, before it is all in memory), decoded without
pydantic, and answered with bytes that orjson wrote.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sluice_runtime.errors import InvalidInput, PayloadTooLarge
from sluice_runtime.rest.jsonio import dumps
from sluice_runtime.transport import REQUEST_ID_HEADER, new_request_id

JSON = "application/json"
BINARY = "application/octet-stream"

_HEADER_KEY = REQUEST_ID_HEADER.encode()

RawHeader = tuple[bytes, bytes]
RawHeaders = dict[bytes, bytes]  # an ASGI scope's headers by (lower-case) name


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body of a routed request (see `receive_body`)."""
    return await receive_body(request.receive, dict(request.scope["headers"]), limit)


async def receive_body(receive: Receive, headers: RawHeaders, limit: int) -> bytes:
    """The whole body, or PayloadTooLarge as soon as its declared or streamed size passes limit.

    Straight from the ASGI `receive`: a small body arrives in one message and is returned
    as it came, without a copy or Starlette's stream wrapper.
    """
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"request body of {declared.decode()} bytes exceeds the limit of {limit}"
        )
    encoding = headers.get(b"content-encoding", b"identity")
    if encoding != b"identity":
        raise InvalidInput(
            f"Content-Encoding {encoding.decode('latin-1')!r} is not supported; "
            "send it uncompressed"
        )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        if chunk:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if len(chunks) == 1:
        return chunks[0]
    return b"".join(chunks)


async def send_raw(
    send: Send, status: int, body: bytes, content_type: bytes, headers: list[RawHeader]
) -> None:
    """Answer through ASGI `send` directly: what a Starlette Response does, minus the object."""
    headers.append((b"content-length", b"%d" % len(body)))
    headers.append((b"content-type", content_type))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def json_response(
    doc: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON answer written by orjson."""
    return Response(dumps(doc), status_code=status_code, media_type=JSON, headers=headers)


def error_response(status_code: int, message: str, request_id: str | None = None) -> Response:
    """The protocol's error shape, `{"error": "..."}`, and nothing else."""
    headers = {REQUEST_ID_HEADER: request_id} if request_id else None
    return json_response({"error": message}, status_code, headers)


class RequestIdMiddleware:
    """Echoes X-Request-ID on every answer, generating one when the client sent none.

    Handlers that know better (the inference routes, which also honour the body's `id`)
    set the header themselves; it is then left alone. Pure ASGI, so it costs one header scan.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for key, value in scope["headers"] if key == _HEADER_KEY), None)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if not any(key == _HEADER_KEY for key, _ in headers):
                    headers.append((_HEADER_KEY, given or new_request_id().encode()))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)
