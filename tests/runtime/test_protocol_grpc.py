"""gRPC wire compatibility: unmodified tritonclient.grpc (and Triton's own generated stub for
typed contents, which tritonclient never sends) against a real runtime, plus health checks.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from tests.models import ONNX_TYPES, identity_all_types, mlp, multi_io, slow
from tests.runtime.harness import RuntimeProcess, StartRuntime
from tests.runtime.protocol_data import all_types_feed, reference

Array = np.ndarray[Any, Any]


def client(runtime: RuntimeProcess) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(runtime.grpc_address)


def infer_input(name: str, value: Array, datatype: str) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput(name, list(value.shape), datatype)
    tensor.set_data_from_numpy(value)
    return tensor


def health_status(runtime: RuntimeProcess, service: str = "") -> Any:
    with grpc.insecure_channel(runtime.grpc_address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def test_server_and_model_metadata_over_grpc(tmp_path: Path, start_runtime: StartRuntime) -> None:
    model = mlp(tmp_path / "mlp.onnx", inputs=8, hidden=16, outputs=3)
    runtime = start_runtime(model, model_name="mlp", model_version="5", max_batch_size=4)
    with client(runtime) as triton:
        assert triton.is_server_live()
        assert triton.is_server_ready()
        assert triton.is_model_ready("mlp")
        assert triton.is_model_ready("mlp", "5")
        server = triton.get_server_metadata(as_json=True)
        assert server["name"] == "sluice"
        assert "binary_tensor_data" in server["extensions"]
        for version in ("", "5"):
            metadata = triton.get_model_metadata("mlp", version, as_json=True)
            assert metadata["versions"] == ["5"]
            assert metadata["inputs"] == [
                {"name": "input", "datatype": "FP32", "shape": ["-1", "8"]}
            ]
            config = triton.get_model_config("mlp", version, as_json=True)["config"]
            assert config["max_batch_size"] == 4
            assert config["input"] == [{"name": "input", "data_type": "TYPE_FP32", "dims": ["8"]}]
            assert config["output"] == [{"name": "output", "data_type": "TYPE_FP32", "dims": ["3"]}]
    assert health_status(runtime) == health_pb2.HealthCheckResponse.SERVING
    assert health_status(runtime, "inference.GRPCInferenceService") == (
        health_pb2.HealthCheckResponse.SERVING
    )


def test_raw_and_typed_contents_equal_onnxruntime(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    model = multi_io(tmp_path / "multi.onnx")
    runtime = start_runtime(model, model_name="multi", model_version="2", max_batch_size=8)
    rng = np.random.default_rng(11)
    feed = {
        "x": rng.standard_normal((3, 4)).astype(np.float32),
        "offset": rng.integers(-5, 5, (3, 4)).astype(np.int64),
        "scale": rng.standard_normal((3, 1)).astype(np.float16),
    }
    expected = reference(model, feed)
    datatypes = {"x": "FP32", "offset": "INT64", "scale": "FP16"}
    with client(runtime) as triton:
        for version in ("", "2"):
            result = triton.infer(
                "multi",
                [infer_input(name, value, datatypes[name]) for name, value in feed.items()],
                model_version=version,
                request_id=f"raw-{version}",
            )
            assert result.get_response().id == f"raw-{version}"
            for name, value in expected.items():
                np.testing.assert_array_equal(result.as_numpy(name), value)

    # tritonclient always sends raw contents; Triton's own stub sends typed ones. (The model
    # above has an FP16 input, which has no typed field, so use the single-input mlp.)
    mlp_model = mlp(tmp_path / "mlp.onnx", inputs=4, hidden=8, outputs=2)
    runtime = start_runtime(mlp_model, model_name="mlp", max_batch_size=4)
    x = feed["x"]
    request = service_pb2.ModelInferRequest(model_name="mlp", id="typed")
    tensor = request.inputs.add(name="input", datatype="FP32", shape=[3, 4])
    tensor.contents.fp32_contents.extend(x.reshape(-1).tolist())
    with grpc.insecure_channel(runtime.grpc_address) as channel:
        response = service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
            request, timeout=30
        )
    assert response.id == "typed"
    assert [(o.name, o.datatype, list(o.shape)) for o in response.outputs] == [
        ("output", "FP32", [3, 2])
    ]
    got = np.frombuffer(response.raw_output_contents[0], dtype=np.float32).reshape(3, 2)
    np.testing.assert_allclose(got, reference(mlp_model, {"input": x})["output"], rtol=1e-6)


def test_every_datatype_round_trips(tmp_path: Path, start_runtime: StartRuntime) -> None:
    model = identity_all_types(tmp_path / "types.onnx")
    runtime = start_runtime(model, model_name="types", max_batch_size=4)
    feed = all_types_feed()
    with client(runtime) as triton:
        result = triton.infer(
            "types",
            [infer_input(name, value, name.removeprefix("in_")) for name, value in feed.items()],
        )
    for datatype in ONNX_TYPES:
        got = result.as_numpy(f"out_{datatype}")
        sent = feed[f"in_{datatype}"]
        if datatype == "BYTES":
            assert [item.decode() for item in got.reshape(-1)] == list(sent.reshape(-1))
        else:
            assert got.dtype == sent.dtype, datatype
            np.testing.assert_array_equal(got, sent)


def test_every_error_carries_its_status_and_names_the_input(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    model = multi_io(tmp_path / "multi.onnx")
    runtime = start_runtime(model, model_name="multi", max_batch_size=8, max_request_bytes=65536)
    x = infer_input("x", np.zeros((1, 4), np.float32), "FP32")
    offset = infer_input("offset", np.zeros((1, 4), np.int64), "INT64")
    scale = infer_input("scale", np.ones((1, 1), np.float16), "FP16")
    cases: list[tuple[str, str, list[grpcclient.InferInput], str, str]] = [
        ("other", "", [x, offset, scale], "NOT_FOUND", "model 'other' is not served here"),
        ("multi", "9", [x, offset, scale], "NOT_FOUND", "version '9' is not served here"),
        (
            "multi",
            "",
            [x, offset, infer_input("scales", np.ones((1, 1), np.float16), "FP16")],
            "INVALID_ARGUMENT",
            "'scales'",
        ),
        (
            "multi",
            "",
            [infer_input("x", np.zeros((1, 4), np.float64), "FP64"), offset, scale],
            "INVALID_ARGUMENT",
            "input 'x': expected datatype FP32, got FP64",
        ),
        (
            "multi",
            "",
            [infer_input("x", np.zeros((2, 3), np.float32), "FP32"), offset, scale],
            "INVALID_ARGUMENT",
            "input 'x': expected shape [-1, 4], got [2, 3]",
        ),
        ("multi", "", [x, offset], "INVALID_ARGUMENT", "'scale'"),
        (
            "multi",
            "",
            [
                infer_input("x", np.zeros((3000, 4), np.float32), "FP32"),
                infer_input("offset", np.zeros((3000, 4), np.int64), "INT64"),
                infer_input("scale", np.ones((3000, 1), np.float16), "FP16"),
            ],
            "RESOURCE_EXHAUSTED",
            "larger than the limit of 65536 bytes",
        ),
    ]
    with client(runtime) as triton:
        for name, version, inputs, status, fragment in cases:
            with pytest.raises(InferenceServerException) as caught:
                triton.infer(name, inputs, model_version=version)
            assert caught.value.status() == f"StatusCode.{status}", caught.value
            assert fragment in caught.value.message(), (fragment, caught.value.message())
        for call in (triton.get_model_metadata, triton.get_model_config):
            with pytest.raises(InferenceServerException) as caught:
                call("other")
            assert caught.value.status() == "StatusCode.NOT_FOUND"
    assert runtime.metric("sluice_requests_total", protocol="grpc", code="INVALID_ARGUMENT") == 4
    assert runtime.metric("sluice_requests_total", protocol="grpc", code="NOT_FOUND") == 2


def test_request_id_from_metadata_or_generated(tmp_path: Path, start_runtime: StartRuntime) -> None:
    model = mlp(tmp_path / "mlp.onnx", inputs=4, hidden=8, outputs=2)
    runtime = start_runtime(model, model_name="mlp", max_batch_size=4)
    x = infer_input("input", np.zeros((1, 4), np.float32), "FP32")
    with client(runtime) as triton:
        answered = triton.infer("mlp", [x], headers={"x-request-id": "trace-7"})
        assert answered.get_response().id == "trace-7"
        generated = triton.infer("mlp", [x]).get_response().id
        assert re.fullmatch(r"[0-9a-f]{32}", generated)
        with pytest.raises(InferenceServerException):
            triton.infer(
                "mlp",
                [infer_input("input", np.zeros((1, 3), np.float32), "FP32")],
                request_id="bad-8",
            )
    assert re.search(r"grpc request bad-8: INVALID_ARGUMENT .*input 'input'", runtime.logs())


def test_health_and_infer_are_unavailable_until_warm(
    tmp_path: Path, start_runtime: StartRuntime
) -> None:
    # A slow model warmed many times leaves a long window between live and ready.
    runtime = start_runtime(
        slow(tmp_path / "slow.onnx"), max_batch_size=4, warmup_requests=4, wait_ready=False
    )
    deadline = time.monotonic() + 60
    warming = None
    while warming is None and time.monotonic() < deadline:
        assert runtime.process.poll() is None, runtime.logs()
        try:
            warming = health_status(runtime)
        except grpc.RpcError:
            time.sleep(0.02)
    assert warming == health_pb2.HealthCheckResponse.NOT_SERVING
    with client(runtime) as triton:
        assert triton.is_server_live()
        with pytest.raises(InferenceServerException) as caught:
            triton.infer("model", [infer_input("x", np.zeros((1, 4), np.float32), "FP32")])
        assert caught.value.status() == "StatusCode.UNAVAILABLE"
        runtime.wait_ready()
        assert health_status(runtime) == health_pb2.HealthCheckResponse.SERVING
        result = triton.infer("model", [infer_input("x", np.ones((1, 4), np.float32), "FP32")])
        np.testing.assert_array_equal(result.as_numpy("y"), np.ones((1, 4), np.float32))
