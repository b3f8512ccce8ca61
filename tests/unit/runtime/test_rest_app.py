"""The REST app's translation layer: routes, error shapes, limits, request ids, metrics.

The data plane here is a tiny stand-in that satisfies the DataPlane contract and echoes its
inputs, so these tests exercise only what the transport adds. The real runtime, with
tritonclient, is tested in tests/runtime/test_protocol_rest.py.
"""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from prometheus_client import CollectorRegistry
from sluice_runtime.errors import InvalidInput, ModelNotFound, NotReady, QueueFull, SluiceError
from sluice_runtime.metrics import RuntimeMetrics
from sluice_runtime.rest import create_rest_app
from sluice_runtime.tensors import InferRequest, InferResponse, ModelMetadata, TensorSpec

LIMIT = 4096
METADATA = ModelMetadata(
    name="m",
    version="1",
    platform="onnxruntime_onnx",
    inputs=(TensorSpec("x", "FP32", (-1, 2)),),
    outputs=(TensorSpec("x", "FP32", (-1, 2)),),
    max_batch_size=4,
    device="cpu",
    digest="sha256:" + "0" * 64,
)


class EchoDataPlane:
    """The DataPlane contract, answering each request with its own inputs."""

    def __init__(self) -> None:
        self.metadata = METADATA
        self.is_ready = True
        self.failure: Exception | None = None
        self.calls: list[tuple[str, str | None, InferRequest]] = []

    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return self.is_ready

    def server_metadata(self) -> dict[str, Any]:
        return {"name": "sluice", "version": "0", "extensions": ["binary_tensor_data"]}

    def _check(self, name: str, version: str | None) -> None:
        if name != "m" or version not in (None, "", "1"):
            raise ModelNotFound(f"model {name!r} version {version!r} is not served here")

    def model_metadata(self, name: str, version: str | None) -> ModelMetadata:
        self._check(name, version)
        return METADATA

    def model_ready(self, name: str, version: str | None) -> bool:
        self._check(name, version)
        return self.is_ready

    def model_config(self, name: str, version: str | None) -> dict[str, Any]:
        self._check(name, version)
        return {"name": name, "max_batch_size": 4}

    async def infer(self, name: str, version: str | None, request: InferRequest) -> InferResponse:
        self.calls.append((name, version, request))
        if self.failure is not None:
            raise self.failure
        self._check(name, version)
        return InferResponse("m", "1", request.id, list(request.inputs))


@pytest.fixture
def dataplane() -> EchoDataPlane:
    return EchoDataPlane()


@pytest.fixture
def metrics() -> RuntimeMetrics:
    return RuntimeMetrics(CollectorRegistry(), "m", "1")


def call(
    dataplane: EchoDataPlane,
    metrics: RuntimeMetrics,
    method: str,
    path: str,
    **kwargs: Any,
) -> httpx.Response:
    app = create_rest_app(dataplane, metrics, max_request_bytes=LIMIT)  # type: ignore[arg-type]

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def infer_body(**extra: Any) -> dict[str, Any]:
    return {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1.0, 2.0]}],
        **extra,
    }


def test_health_answers_200_then_503_with_an_error_when_not_ready(
    dataplane: EchoDataPlane, metrics: RuntimeMetrics
) -> None:
    assert call(dataplane, metrics, "GET", "/v2/health/live").json() == {"live": True}
    assert call(dataplane, metrics, "GET", "/v2/health/ready").json() == {"ready": True}
    dataplane.is_ready = False
    for path in ("/v2/health/ready", "/v2/models/m/ready", "/v1/models/m"):
        response = call(dataplane, metrics, "GET", path)
        assert response.status_code == 503
        assert list(response.json()) == ["error"]


@pytest.mark.parametrize("prefix", ["/v2/models/m", "/v2/models/m/versions/1"])
def test_metadata_ready_and_config_serve_both_paths(
    dataplane: EchoDataPlane, metrics: RuntimeMetrics, prefix: str
) -> None:
    assert call(dataplane, metrics, "GET", prefix).json()["inputs"] == [
        {"name": "x", "datatype": "FP32", "shape": [-1, 2]}
    ]
    assert call(dataplane, metrics, "GET", f"{prefix}/ready").json() == {"name": "m", "ready": True}
    assert call(dataplane, metrics, "GET", f"{prefix}/config").json()["max_batch_size"] == 4


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "/v2/models/other", 404, "model 'other' version None is not served here"),
        ("GET", "/v2/models/m/versions/9/config", 404, "model 'm' version '9' is not served here"),
        ("GET", "/nowhere", 404, "no route for GET /nowhere"),
        ("DELETE", "/v2/health/live", 405, "method DELETE is not allowed on /v2/health/live"),
        ("GET", "/v2/models/m/infer", 405, "method GET is not allowed on /v2/models/m/infer"),
    ],
)
def test_errors_are_an_error_object_with_the_right_status(
    dataplane: EchoDataPlane,
    metrics: RuntimeMetrics,
    method: str,
    path: str,
    status: int,
    message: str,
) -> None:
    response = call(dataplane, metrics, method, path)
    assert response.status_code == status
    assert response.json() == {"error": message}
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (InvalidInput("input 'x': expected FP32, got INT8"), 400, "400"),
        (ModelNotFound("model 'q' is not served here"), 404, "404"),
        (QueueFull("queue is full (1024 waiting)"), 429, "429"),
        (NotReady("model 'm' is draining"), 503, "503"),
    ],
)
def test_infer_maps_each_data_plane_error_to_its_status_and_counts_it(
    dataplane: EchoDataPlane,
    metrics: RuntimeMetrics,
    failure: SluiceError,
    status: int,
    code: str,
) -> None:
    dataplane.failure = failure
    response = call(dataplane, metrics, "POST", "/v2/models/m/infer", json=infer_body())
    assert response.status_code == status
    assert response.json() == {"error": failure.message}
    counted = metrics.registry.get_sample_value(
        "sluice_requests_total", {"model": "m", "version": "1", "protocol": "rest", "code": code}
    )
    assert counted == 1.0


def test_an_unexpected_failure_is_a_500_error_object(
    dataplane: EchoDataPlane, metrics: RuntimeMetrics
) -> None:
    dataplane.failure = RuntimeError("boom")
    response = call(dataplane, metrics, "POST", "/v2/models/m/infer", json=infer_body())
    assert response.status_code == 500
    assert response.json() == {"error": "internal error: RuntimeError"}


@pytest.mark.parametrize(
    "content", [b"{", b'{"inputs": "x"}', orjson.dumps({"inputs": [{"name": 1}]})]
)
def test_malformed_infer_bodies_are_400_never_422(
    dataplane: EchoDataPlane, metrics: RuntimeMetrics, content: bytes
) -> None:
    response = call(dataplane, metrics, "POST", "/v2/models/m/infer", content=content)
    assert response.status_code == 400
    assert list(response.json()) == ["error"]
    assert dataplane.calls == []


def test_a_body_over_the_limit_is_413_by_content_length_or_by_stream(
    dataplane: EchoDataPlane, metrics: RuntimeMetrics
) -> None:
    big = b" " * (LIMIT + 1)
    response = call(dataplane, metrics, "POST", "/v2/models/m/infer", content=big)
    assert response.status_code == 413
    assert response.json() == {
        "error": f"request body of {LIMIT + 1} bytes exceeds the limit of {LIMIT}"
    }

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b" " * 1024

    response = call(dataplane, metrics, "POST", "/v2/models/m/infer", content=chunks())
    assert response.status_code == 413
    assert response.json() == {"error": f"request body exceeds the limit of {LIMIT} bytes"}
    assert dataplane.calls == []


def test_request_ids_come_from_header_body_or_are_generated(
    dataplane: EchoDataPlane, metrics: RuntimeMetrics
) -> None:
    response = call(
        dataplane,
        metrics,
        "POST",
        "/v2/models/m/versions/1/infer",
        json=infer_body(),
        headers={"X-Request-ID": "from-header"},
    )
    assert response.headers["x-request-id"] == "from-header"
    assert response.json()["id"] == "from-header"
    response = call(dataplane, metrics, "POST", "/v2/models/m/infer", json=infer_body(id="in-body"))
    assert response.headers["x-request-id"] == "in-body"
    assert response.json()["id"] == "in-body"
    response = call(dataplane, metrics, "POST", "/v2/models/m/infer", json=infer_body())
    generated = response.json()["id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert response.headers["x-request-id"] == generated
    assert [(name, version, request.id) for name, version, request in dataplane.calls] == [
        ("m", "1", "from-header"),
        ("m", None, "in-body"),
        ("m", None, generated),
    ]


def test_binary_answers_carry_the_header_length_and_octet_stream(
    dataplane: EchoDataPlane, metrics: RuntimeMetrics
) -> None:
    data = np.array([[1.5, -2.5]], dtype=np.float32)
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": "FP32",
                    "shape": [1, 2],
                    "parameters": {"binary_data_size": 8},
                }
            ],
            "outputs": [{"name": "x", "parameters": {"binary_data": True}}],
        }
    )
    response = call(
        dataplane,
        metrics,
        "POST",
        "/v2/models/m/infer",
        content=header + data.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    length = int(response.headers["inference-header-content-length"])
    doc = orjson.loads(response.content[:length])
    assert doc["outputs"][0]["parameters"] == {"binary_data_size": 8}
    assert response.content[length:] == struct.pack("<2f", 1.5, -2.5)


def test_compressed_bodies_are_refused_plainly(
    dataplane: EchoDataPlane, metrics: RuntimeMetrics
) -> None:
    response = call(
        dataplane,
        metrics,
        "POST",
        "/v2/models/m/infer",
        content=b"\x1f\x8b",
        headers={"Content-Encoding": "gzip"},
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "Content-Encoding 'gzip' is not supported; send it uncompressed"
    }


def test_v1_predict_and_model_status(dataplane: EchoDataPlane, metrics: RuntimeMetrics) -> None:
    assert call(dataplane, metrics, "GET", "/v1/models/m").json() == {"name": "m", "ready": True}
    response = call(
        dataplane, metrics, "POST", "/v1/models/m:predict", json={"instances": [[1, 2], [3, 4]]}
    )
    assert response.json() == {"predictions": [[1.0, 2.0], [3.0, 4.0]]}
    response = call(dataplane, metrics, "POST", "/v1/models/q:predict", json={"instances": [[1]]})
    assert response.status_code == 404
    assert list(response.json()) == ["error"]


def test_metrics_expose_the_registry_in_prometheus_text(
    dataplane: EchoDataPlane, metrics: RuntimeMetrics
) -> None:
    metrics.observe_request("rest", "200", 0.01)
    response = call(dataplane, metrics, "GET", "/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    assert (
        'sluice_requests_total{code="200",model="m",protocol="rest",version="1"} 1.0'
        in response.text
    )
