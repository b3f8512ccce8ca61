"""gRPC status mapping of data plane errors, and the health service's status logic."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2
from sluice_runtime import errors
from sluice_runtime.grpc.health import SERVICE_NAME, HealthService
from sluice_runtime.grpc.status import StatusCode, status_code
from sluice_runtime.grpc.wire import RequestHead

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def test_status_codes_are_grpcs_own() -> None:
    # Our enum replaces grpcio's in the runtime: every value must be the protocol's.
    assert {code.name: code.value for code in StatusCode} == {
        code.name: code.value[0] for code in grpc.StatusCode
    }


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.InvalidInput("bad"), StatusCode.INVALID_ARGUMENT),
        (errors.ModelNotFound("no"), StatusCode.NOT_FOUND),
        (errors.PayloadTooLarge("big"), StatusCode.RESOURCE_EXHAUSTED),
        (errors.QueueFull("full"), StatusCode.RESOURCE_EXHAUSTED),
        (errors.NotReady("wait"), StatusCode.UNAVAILABLE),
        (errors.ModelLoadError("broken"), StatusCode.INTERNAL),
    ],
)
def test_each_error_maps_to_its_status(error: errors.SluiceError, code: StatusCode) -> None:
    assert status_code(error) == code


class Readiness:
    """The one DataPlane method the health service reads."""

    def __init__(self) -> None:
        self.value = True

    def ready(self) -> bool:
        return self.value


def test_serving_needs_both_the_switch_and_a_ready_data_plane() -> None:
    dataplane = Readiness()
    health = HealthService(dataplane)  # type: ignore[arg-type]
    assert health.status("") == NOT_SERVING  # until the server switches it on
    health.set_serving(True)
    assert health.status("") == SERVING
    assert health.status(SERVICE_NAME) == SERVING
    assert health.status("other.Service") == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
    dataplane.value = False  # draining
    assert health.status("") == NOT_SERVING
    dataplane.value = True
    health.set_serving(False)
    assert health.status(SERVICE_NAME) == NOT_SERVING


def test_watchers_hear_each_change() -> None:
    health = HealthService(Readiness())  # type: ignore[arg-type]
    request = health_pb2.HealthCheckRequest(service="").SerializeToString()

    async def watch() -> list[Any]:
        stream = health.watch(request, RequestHead("/grpc.health.v1.Health/Watch"))

        async def status() -> Any:
            return health_pb2.HealthCheckResponse.FromString(await anext(stream)).status

        seen = [await status()]
        health.set_serving(True)
        seen.append(await status())
        health.set_serving(False)
        seen.append(await status())
        await stream.aclose()
        return seen

    assert asyncio.run(asyncio.wait_for(watch(), 5)) == [NOT_SERVING, SERVING, NOT_SERVING]
