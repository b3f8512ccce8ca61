"""The REST transport: Open Inference Protocol V2, V1 `:predict`, health and /metrics.

Routes are plain Starlette endpoints on a FastAPI app (no pydantic models, no dependency
solving on the hot path); every error leaves as `{"error": "..."}` with the status the
data plane's error carries, never FastAPI's `{"detail": ...}` or a 422.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sluice_runtime.errors import NotReady, SluiceError
from sluice_runtime.metrics import RuntimeMetrics
from sluice_runtime.rest.http import (
    BINARY,
    JSON,
    RawHeader,
    RawHeaders,
    RequestIdMiddleware,
    error_response,
    json_response,
    read_body,
    receive_body,
    send_raw,
)
from sluice_runtime.rest.jsonio import dumps
from sluice_runtime.rest.shadow_codec import SHADOW_ROUTE, decode_shadow_copy
from sluice_runtime.rest.v1_codec import decode_predict, encode_predict
from sluice_runtime.rest.v2_codec import (
    decode_infer_request,
    encode_infer_response,
    model_metadata_doc,
)
from sluice_runtime.shadow import compare_copy, summary
from sluice_runtime.tensors import InferRequest, InferResponse
from sluice_runtime.transport import REQUEST_ID_HEADER, log_request, new_request_id

if TYPE_CHECKING:
    from sluice_runtime.dataplane import DataPlane

log = logging.getLogger(__name__)

PROTOCOL = "rest"
_JSON = JSON.encode()
_BINARY = BINARY.encode()
_REQUEST_ID = REQUEST_ID_HEADER.encode()
# What an inference handler answers: body, content type, extra headers, the request's id.
_Answer = tuple[bytes, bytes, list[RawHeader], str]
_Run = Callable[[dict[str, str], RawHeaders, Receive, str], Awaitable[_Answer]]
_MODEL = "/v2/models/{model_name}"
_VERSIONED = "/v2/models/{model_name}/versions/{model_version}"
_INFER_PATH = re.compile(
    r"/v2/models/(?P<model_name>[^/]+)(?:/versions/(?P<model_version>[^/]+))?/infer"
)
_PREDICT_PATH = re.compile(r"/v1/models/(?P<model_name>[^/]+):predict")

Handler = Callable[[Scope, Receive, Send], Awaitable[None]]


class _RestApp(FastAPI):
    """FastAPI, except that inference requests skip its middleware stack and router.

    Why: the inference endpoints already do everything those layers would (errors become
    `{"error": ...}` answers, the request id is set, metrics and the log line are written),
    yet passing them (error and exception middlewares, the request-id middleware, the
    exit-stack middleware, a regex scan of the routes) cost about as much CPU as the
    inference of a small model. The same ASGI handlers answer, with the same path
    parameters; every other request, and any other method on these paths, goes through
    FastAPI.
    """

    fast_routes: tuple[tuple[re.Pattern[str], Handler], ...] = ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            for pattern, handler in self.fast_routes:
                match = pattern.fullmatch(scope["path"])
                if match is not None:
                    scope["path_params"] = {k: v for k, v in match.groupdict().items() if v}
                    await handler(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)


class _Route:
    """An ASGI handler as a route endpoint: Starlette calls an object (not a function) as ASGI."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._handler(scope, receive, send)


def create_rest_app(
    dataplane: DataPlane,
    metrics: RuntimeMetrics,
    *,
    max_request_bytes: int,
    exposition: Callable[[], Awaitable[bytes]] | None = None,
) -> FastAPI:
    """The HTTP application for one data plane; nothing global is touched.

    `exposition` writes /metrics when this process is one of several workers; by default
    it is this process's own registry.
    """
    # FastAPI's own OpenTelemetry hooks look up providers on every request; Sluice's metrics
    # are Prometheus, so they stay off and cost nothing on the hot path.
    app = _RestApp(
        title="sluice-runtime",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    endpoints = _Endpoints(dataplane, metrics, max_request_bytes, exposition)
    # Inference requests take the fast path (`_RestApp`); their routes are here too, so other
    # methods on these paths get FastAPI's 405.
    inference: list[tuple[str, Handler]] = [
        (f"{_MODEL}/infer", endpoints.infer),
        (f"{_VERSIONED}/infer", endpoints.infer),
        ("/v1/models/{model_name}:predict", endpoints.v1_predict),
    ]
    for path, handler in inference:
        route = Route(path, _Route(handler), methods=["POST"], include_in_schema=False)
        app.router.routes.append(route)
    routes: list[tuple[str, Callable[[Request], Awaitable[Response]], str]] = [
        ("/v2/health/live", endpoints.live, "GET"),
        ("/v2/health/ready", endpoints.ready, "GET"),
        ("/v2", endpoints.server_metadata, "GET"),
        ("/metrics", endpoints.metrics, "GET"),
        ("/v1/models/{model_name}", endpoints.v1_model, "GET"),
        (SHADOW_ROUTE, endpoints.shadow, "POST"),
    ]
    for prefix in (_MODEL, _VERSIONED):
        routes += [
            (prefix, endpoints.model_metadata, "GET"),
            (f"{prefix}/ready", endpoints.model_ready, "GET"),
            (f"{prefix}/config", endpoints.model_config, "GET"),
        ]
    for path, endpoint, method in routes:
        app.router.add_route(path, endpoint, methods=[method], include_in_schema=False)
    app.add_exception_handler(SluiceError, _sluice_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)
    app.add_middleware(RequestIdMiddleware)
    app.fast_routes = ((_INFER_PATH, endpoints.infer), (_PREDICT_PATH, endpoints.v1_predict))
    return app


class _Endpoints:
    """The route handlers, bound to one data plane and its metrics."""

    def __init__(
        self,
        dataplane: DataPlane,
        metrics: RuntimeMetrics,
        limit: int,
        exposition: Callable[[], Awaitable[bytes]] | None,
    ) -> None:
        self._dataplane = dataplane
        self._metrics = metrics
        self._exposition = exposition
        self._limit = limit
        self._in_flight = metrics.in_flight(PROTOCOL)

    async def live(self, request: Request) -> Response:
        if not self._dataplane.live():
            raise NotReady("server is not live")
        return json_response({"live": True})

    async def ready(self, request: Request) -> Response:
        if not self._dataplane.ready():
            raise NotReady("server is not ready: the model is loading, warming up or draining")
        return json_response({"ready": True})

    async def server_metadata(self, request: Request) -> Response:
        return json_response(self._dataplane.server_metadata())

    async def metrics(self, request: Request) -> Response:
        if self._exposition is None:
            text = generate_latest(self._metrics.registry)
        else:
            text = await self._exposition()
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    async def model_metadata(self, request: Request) -> Response:
        name, version = _model_path(request)
        return json_response(model_metadata_doc(self._dataplane.model_metadata(name, version)))

    async def model_ready(self, request: Request) -> Response:
        name, version = _model_path(request)
        if not self._dataplane.model_ready(name, version):
            raise NotReady(f"model {name!r} is not ready")
        return json_response({"name": name, "ready": True})

    async def model_config(self, request: Request) -> Response:
        name, version = _model_path(request)
        return json_response(self._dataplane.model_config(name, version))

    async def v1_model(self, request: Request) -> Response:
        return await self.model_ready(request)

    async def infer(self, scope: Scope, receive: Receive, send: Send) -> None:
        """V2 inference, JSON or with binary tensors."""
        await self._observed(scope, receive, send, self._infer)

    async def _infer(
        self, params: dict[str, str], headers: RawHeaders, receive: Receive, request_id: str
    ) -> _Answer:
        body = await receive_body(receive, headers, self._limit)
        header_length = headers.get(b"inference-header-content-length")
        infer_request = decode_infer_request(
            body, None if header_length is None else header_length.decode(), request_id
        )
        name, version = params["model_name"], params.get("model_version")
        response = await self._dataplane.infer(name, version, infer_request)
        content, json_length = encode_infer_response(response, infer_request)
        if json_length is None:
            return content, _JSON, [], infer_request.id
        binary = [(b"inference-header-content-length", b"%d" % json_length)]
        return content, _BINARY, binary, infer_request.id

    async def v1_predict(self, scope: Scope, receive: Receive, send: Send) -> None:
        """V1 `:predict`."""
        await self._observed(scope, receive, send, self._predict)

    async def _predict(
        self, params: dict[str, str], headers: RawHeaders, receive: Receive, request_id: str
    ) -> _Answer:
        name = params["model_name"]
        metadata = self._dataplane.model_metadata(name, None)
        body = await receive_body(receive, headers, self._limit)
        infer_request, style = decode_predict(body, metadata, request_id)
        response = await self._dataplane.infer(name, None, infer_request)
        return encode_predict(response, style), _JSON, [], request_id

    async def shadow(self, request: Request) -> Response:
        """A copy from a primary (rest/shadow_codec.py): run it here, record the comparison.

        The path names the primary's model; the copy runs on the model served here (a shadow
        may serve it under another name). Copies are not client requests: they count in the
        sluice_shadow_* series, not in sluice_requests, and are never mirrored again.
        """
        fallback_id = request.headers.get(REQUEST_ID_HEADER) or new_request_id()
        body = await read_body(request, self._limit)
        header_length = request.headers.get("inference-header-content-length")
        copy = decode_shadow_copy(body, header_length, fallback_id)
        dataplane = self._dataplane

        async def infer(infer_request: InferRequest) -> InferResponse:
            name = dataplane.metadata.name
            return await dataplane.infer(name, None, infer_request, mirror=False)

        comparisons = await compare_copy(infer, self._metrics.shadow, copy)
        return json_response(summary(comparisons), headers={REQUEST_ID_HEADER: copy.request.id})

    async def _observed(self, scope: Scope, receive: Receive, send: Send, run: _Run) -> None:
        """Runs one inference with its metrics, log line, request id and error answer."""
        started = perf_counter()
        headers: RawHeaders = dict(scope["headers"])
        given = headers.get(_REQUEST_ID)
        request_id = given.decode("latin-1") if given else new_request_id()
        status, error = 500, "internal error"
        with self._in_flight:
            try:
                body, content_type, extra, request_id = await run(
                    scope["path_params"], headers, receive, request_id
                )
                status, error = 200, ""
            except SluiceError as failure:
                status, error = failure.http_status, failure.message
                body, content_type, extra = dumps({"error": error}), _JSON, []
            except Exception as failure:
                log.exception("request %s failed unexpectedly", request_id)
                error = f"internal error: {type(failure).__name__}"
                body, content_type, extra = dumps({"error": error}), _JSON, []
            finally:
                seconds = perf_counter() - started
                code = str(status)
                self._metrics.observe_request(PROTOCOL, code, seconds)
                log_request(PROTOCOL, request_id, code, seconds, error)
        extra.append((_REQUEST_ID, given or request_id.encode("latin-1")))
        await send_raw(send, status, body, content_type, extra)


def _model_path(request: Request) -> tuple[str, str | None]:
    params = request.path_params
    return params["model_name"], params.get("model_version")


async def _sluice_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, SluiceError)
    return error_response(error.http_status, error.message)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if error.status_code == 404:
        message = f"no route for {request.method} {request.url.path}"
    elif error.status_code == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(error.detail)
    response = error_response(error.status_code, message)
    response.headers.update(error.headers or {})
    return response


async def _validation_error(request: Request, error: Exception) -> Response:
    return error_response(400, f"invalid request: {error}")


async def _internal_error(request: Request, error: Exception) -> Response:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    return error_response(500, f"internal error: {type(error).__name__}")
