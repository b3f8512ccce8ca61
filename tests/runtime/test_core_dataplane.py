"""The data plane in process, on a real ONNX Runtime session: states, readiness, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sluice_runtime.dataplane import DataPlane
from sluice_runtime.errors import InvalidInput, ModelLoadError, ModelNotFound, NotReady
from sluice_runtime.metrics import RuntimeMetrics
from sluice_runtime.settings import RuntimeSettings
from sluice_runtime.tensors import InferRequest, RequestedOutput, Tensor

from tests.models import broken, multi_io

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def dataplane(model: Path, tmp_path: Path) -> DataPlane:
    settings = RuntimeSettings(
        model_name="multi",
        model_version="2",
        model_uri=model.as_uri(),
        max_batch_size=8,
        cache_dir=tmp_path / "cache",
    )
    return DataPlane(settings, RuntimeMetrics(CollectorRegistry(), "multi", "2"))


def request(rows: int = 1) -> InferRequest:
    return InferRequest(
        id="r1",
        inputs=[
            Tensor("x", "FP32", (rows, 4), np.ones((rows, 4), np.float32)),
            Tensor("offset", "INT64", (rows, 4), np.ones((rows, 4), np.int64)),
            Tensor("scale", "FP16", (rows, 1), np.ones((rows, 1), np.float16)),
        ],
        outputs=[RequestedOutput("count", {"binary_data": True}), RequestedOutput("sum")],
    )


async def test_live_from_the_start_ready_after_load_not_ready_once_draining(
    tmp_path: Path,
) -> None:
    plane = dataplane(multi_io(tmp_path / "multi.onnx"), tmp_path)
    assert plane.live()
    assert not plane.ready()
    assert not plane.model_ready("multi", None)
    with pytest.raises(NotReady, match=r"'multi' is not ready \(loading\)"):
        plane.model_metadata("multi", "2")
    with pytest.raises(NotReady):
        await plane.infer("multi", None, request())

    await plane.load()
    assert plane.ready()
    assert plane.model_ready("multi", "2")
    assert plane.metadata.device == "cpu"
    assert plane.metadata.max_batch_size == 8

    plane.begin_drain()
    assert not plane.ready()
    assert plane.live()
    answer = await plane.infer("multi", "", request(2))  # accepted work still completes
    assert [output.name for output in answer.outputs] == ["count", "sum"]
    assert answer.outputs[0].parameters == {"binary_data": True}
    np.testing.assert_array_equal(answer.outputs[1].data, np.full((2, 4), 2.0))
    assert answer.id == "r1"

    await plane.close()
    with pytest.raises(NotReady, match="shutting down"):
        await plane.infer("multi", None, request())


async def test_other_names_and_versions_are_not_found(tmp_path: Path) -> None:
    plane = dataplane(multi_io(tmp_path / "multi.onnx"), tmp_path)
    await plane.load()
    with pytest.raises(ModelNotFound, match="model 'other' is not served here"):
        plane.model_config("other", None)
    with pytest.raises(ModelNotFound, match="version '3' is not served here"):
        await plane.infer("multi", "3", request())
    with pytest.raises(InvalidInput, match="missing input 'scale'"):
        await plane.infer("multi", None, InferRequest(id="r", inputs=request().inputs[:2]))
    await plane.close()


async def test_a_failed_load_stays_not_ready(tmp_path: Path) -> None:
    plane = dataplane(broken(tmp_path / "broken.onnx"), tmp_path)
    with pytest.raises(ModelLoadError, match="onnxruntime cannot load"):
        await plane.load()
    assert not plane.ready()
    plane.begin_drain()
    with pytest.raises(NotReady, match=r"'multi' is not ready \(failed\)"):
        plane.model_metadata("multi", None)
