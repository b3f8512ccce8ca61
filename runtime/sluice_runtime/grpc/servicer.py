"""The GRPCInferenceService servicer: translates messages and errors, nothing more.

Each data plane error leaves with the gRPC status its class names (`SluiceError.grpc_code`)
and its message; anything else is a bug and leaves as INTERNAL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias

import grpc

from sluice_runtime.errors import SluiceError
from sluice_runtime.grpc import converters
from sluice_runtime.grpc.generated import inference_pb2 as pb
from sluice_runtime.grpc.generated import inference_pb2_grpc as pb_grpc
from sluice_runtime.metrics import RuntimeMetrics
from sluice_runtime.transport import REQUEST_ID_HEADER, log_request, new_request_id

if TYPE_CHECKING:
    from sluice_runtime.dataplane import DataPlane

log = logging.getLogger(__name__)

PROTOCOL = "grpc"
Context: TypeAlias = grpc.aio.ServicerContext


def status_code(error: SluiceError) -> grpc.StatusCode:
    """The gRPC status a data plane error maps to."""
    return grpc.StatusCode[error.grpc_code]


async def _abort(
    context: Context, code: grpc.StatusCode, message: str, request_id: str = ""
) -> NoReturn:
    trailer = ((REQUEST_ID_HEADER, request_id),) if request_id else ()
    await context.abort(code, message, trailer)
    raise AssertionError("context.abort returned")  # it always raises


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]
    """Open Inference Protocol over gRPC for one data plane."""

    def __init__(self, dataplane: DataPlane, metrics: RuntimeMetrics) -> None:
        self._dataplane = dataplane
        self._metrics = metrics

    async def ServerLive(self, request: Any, context: Context) -> Any:  # noqa: N802
        return pb.ServerLiveResponse(live=self._dataplane.live())

    async def ServerReady(self, request: Any, context: Context) -> Any:  # noqa: N802
        return pb.ServerReadyResponse(ready=self._dataplane.ready())

    async def ServerMetadata(self, request: Any, context: Context) -> Any:  # noqa: N802
        return converters.server_metadata_to_proto(self._dataplane.server_metadata())

    async def ModelReady(self, request: Any, context: Context) -> Any:  # noqa: N802
        return await _answer(
            context,
            lambda: pb.ModelReadyResponse(
                ready=self._dataplane.model_ready(request.name, request.version)
            ),
        )

    async def ModelMetadata(self, request: Any, context: Context) -> Any:  # noqa: N802
        return await _answer(
            context,
            lambda: converters.model_metadata_to_proto(
                self._dataplane.model_metadata(request.name, request.version)
            ),
        )

    async def ModelConfig(self, request: Any, context: Context) -> Any:  # noqa: N802
        return await _answer(
            context,
            lambda: converters.model_config_to_proto(
                self._dataplane.model_config(request.name, request.version)
            ),
        )

    async def ModelInfer(self, request: Any, context: Context) -> Any:  # noqa: N802
        started = perf_counter()
        request_id = request.id or _metadata_request_id(context) or new_request_id()
        code, error = "INTERNAL", "internal error"
        failure: SluiceError | None = None
        with self._metrics.in_flight(PROTOCOL):
            try:
                infer_request = converters.infer_request_from_proto(request, request_id)
                response = await self._dataplane.infer(
                    request.model_name, request.model_version, infer_request
                )
                answer = converters.infer_response_to_proto(response)
                code, error = "OK", ""
                return answer
            except SluiceError as caught:
                failure = caught
                code, error = caught.grpc_code, caught.message
            except Exception as caught:
                log.exception("request %s failed unexpectedly", request_id)
                error = f"internal error: {type(caught).__name__}"
            finally:
                seconds = perf_counter() - started
                self._metrics.observe_request(PROTOCOL, code, seconds)
                log_request(PROTOCOL, request_id, code, seconds, error)
        # Aborting sends the status at once: count and log first, so both precede the answer.
        status = status_code(failure) if failure is not None else grpc.StatusCode.INTERNAL
        await _abort(context, status, error, request_id)


async def _answer(context: Context, produce: Callable[[], Any]) -> Any:
    try:
        return produce()
    except SluiceError as error:
        await _abort(context, status_code(error), error.message)


def _metadata_request_id(context: Context) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_HEADER:
            return str(value)
    return None
