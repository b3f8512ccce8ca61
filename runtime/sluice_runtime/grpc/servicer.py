"""The GRPCInferenceService methods: translate messages and errors, nothing more.

Each method takes the request message's bytes and returns the answer's bytes; the
connection (connection.py) frames them. Each data plane error leaves with the gRPC status
its class names (`SluiceError.grpc_code`) and its message; anything else is a bug and
leaves as INTERNAL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from sluice_runtime.errors import SluiceError
from sluice_runtime.grpc import converters
from sluice_runtime.grpc.connection import Method
from sluice_runtime.grpc.generated import inference_pb2 as pb
from sluice_runtime.grpc.status import GrpcError, StatusCode, status_code
from sluice_runtime.grpc.wire import RequestHead, parse
from sluice_runtime.metrics import RuntimeMetrics
from sluice_runtime.transport import REQUEST_ID_HEADER, log_request, new_request_id

if TYPE_CHECKING:
    from sluice_runtime.dataplane import DataPlane

log = logging.getLogger(__name__)

PROTOCOL = "grpc"
SERVICE = "/inference.GRPCInferenceService/"


class InferenceService:
    """Open Inference Protocol over gRPC for one data plane."""

    def __init__(self, dataplane: DataPlane, metrics: RuntimeMetrics) -> None:
        self._dataplane = dataplane
        self._metrics = metrics
        self._in_flight = metrics.in_flight(PROTOCOL)

    def methods(self) -> dict[str, Method]:
        """The service's methods by their HTTP/2 path; others answer UNIMPLEMENTED."""
        dataplane = self._dataplane
        simple: dict[str, tuple[Any, Callable[[Any], Any]]] = {
            "ServerLive": (
                pb.ServerLiveRequest,
                lambda request: pb.ServerLiveResponse(live=dataplane.live()),
            ),
            "ServerReady": (
                pb.ServerReadyRequest,
                lambda request: pb.ServerReadyResponse(ready=dataplane.ready()),
            ),
            "ServerMetadata": (
                pb.ServerMetadataRequest,
                lambda request: converters.server_metadata_to_proto(dataplane.server_metadata()),
            ),
            "ModelReady": (
                pb.ModelReadyRequest,
                lambda request: pb.ModelReadyResponse(
                    ready=dataplane.model_ready(request.name, request.version)
                ),
            ),
            "ModelMetadata": (
                pb.ModelMetadataRequest,
                lambda request: converters.model_metadata_to_proto(
                    dataplane.model_metadata(request.name, request.version)
                ),
            ),
            "ModelConfig": (
                pb.ModelConfigRequest,
                lambda request: converters.model_config_to_proto(
                    dataplane.model_config(request.name, request.version)
                ),
            ),
        }
        methods = {
            SERVICE + name: Method(unary=_simple(message_type, produce))
            for name, (message_type, produce) in simple.items()
        }
        methods[SERVICE + "ModelInfer"] = Method(unary=self.model_infer)
        return methods

    async def model_infer(self, body: bytes, head: RequestHead) -> bytes:
        started = perf_counter()
        request_id = ""
        code, error = "INTERNAL", "internal error"
        failure: GrpcError | None = None
        with self._in_flight:
            try:
                request = parse(pb.ModelInferRequest, body)
                request_id = request.id or head.metadata.get(REQUEST_ID_HEADER) or new_request_id()
                infer_request = converters.infer_request_from_proto(request, request_id)
                response = await self._dataplane.infer(
                    request.model_name, request.model_version, infer_request
                )
                answer = converters.infer_response_to_proto(response)
                code, error = "OK", ""
                return bytes(answer.SerializeToString())
            except asyncio.CancelledError as cancelled:
                # The connection says why: the deadline passed, or the client reset the
                # stream or went away (connection.py cancels with the status name).
                code = str(cancelled.args[0]) if cancelled.args else StatusCode.CANCELLED.name
                error = "ended before it was answered"
                raise
            except SluiceError as caught:
                failure = GrpcError(status_code(caught), caught.message)
            except GrpcError as caught:
                failure = caught
            except Exception as caught:
                log.exception("request %s failed unexpectedly", request_id)
                failure = GrpcError(StatusCode.INTERNAL, f"internal error: {type(caught).__name__}")
            finally:
                if failure is not None:
                    code, error = failure.code.name, failure.message
                seconds = perf_counter() - started
                self._metrics.observe_request(PROTOCOL, code, seconds)
                log_request(PROTOCOL, request_id, code, seconds, error)
        assert failure is not None  # every path that did not return set it
        trailers = ((REQUEST_ID_HEADER, request_id),) if request_id else ()
        raise GrpcError(failure.code, failure.message, trailers)


def _simple(
    message_type: Any, produce: Callable[[Any], Any]
) -> Callable[[bytes, RequestHead], Awaitable[bytes]]:
    """A method that parses its request, asks the data plane, and maps its errors."""

    async def method(body: bytes, head: RequestHead) -> bytes:
        request = parse(message_type, body)
        try:
            return bytes(produce(request).SerializeToString())
        except SluiceError as error:
            raise GrpcError(status_code(error), error.message) from None

    return method
