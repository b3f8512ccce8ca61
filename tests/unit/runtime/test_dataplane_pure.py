"""The data plane's pure parts: Triton config, output observations, device choice."""

from __future__ import annotations

import numpy as np
import pytest
from sluice_runtime import cuda_wait
from sluice_runtime.dataplane import output_observations, triton_config
from sluice_runtime.errors import ModelLoadError
from sluice_runtime.model import CPU, CUDA, batchable, device_of, plan_device
from sluice_runtime.tensors import ModelMetadata, TensorSpec


def metadata(max_batch_size: int, inputs: tuple[TensorSpec, ...]) -> ModelMetadata:
    return ModelMetadata(
        name="mlp",
        version="2",
        platform="onnxruntime_onnx",
        inputs=inputs,
        outputs=(TensorSpec("scores", "FP32", (-1, 10)), TensorSpec("label", "BYTES", (-1,))),
        max_batch_size=max_batch_size,
        device="cpu",
        digest="sha256:" + "0" * 64,
    )


def test_a_batched_config_leaves_the_batch_dimension_out_of_dims() -> None:
    config = triton_config(metadata(32, (TensorSpec("input", "FP32", (-1, 64)),)))
    assert config == {
        "name": "mlp",
        "platform": "onnxruntime_onnx",
        "backend": "onnxruntime",
        "max_batch_size": 32,
        "input": [{"name": "input", "data_type": "TYPE_FP32", "dims": [64]}],
        "output": [
            {"name": "scores", "data_type": "TYPE_FP32", "dims": [10]},
            {"name": "label", "data_type": "TYPE_STRING", "dims": []},
        ],
    }


def test_an_unbatched_config_keeps_every_dimension() -> None:
    config = triton_config(metadata(0, (TensorSpec("input", "INT8", (-1, 64)),)))
    assert config["max_batch_size"] == 0
    assert config["input"] == [{"name": "input", "data_type": "TYPE_INT8", "dims": [-1, 64]}]
    assert config["output"][0]["dims"] == [-1, 10]


def test_classifier_outputs_are_observed_as_top_class_per_row() -> None:
    scores = np.array([[0.1, 0.7, 0.2], [0.9, 0.05, 0.05]], dtype=np.float32)
    assert output_observations(scores) == [1.0, 0.0]


def test_other_outputs_are_observed_as_each_rows_first_value() -> None:
    assert output_observations(np.array([[0.25], [0.75]], dtype=np.float32)) == [0.25, 0.75]
    assert output_observations(np.array([3, 1], dtype=np.int64)) == [3.0, 1.0]
    assert output_observations(np.array([[5, 6], [7, 8]], dtype=np.int32)) == [5.0, 7.0]
    assert output_observations(np.array([True, False])) == [1.0, 0.0]
    assert output_observations(np.array(2.5)) == [2.5]


def test_text_and_empty_outputs_are_not_observed() -> None:
    assert output_observations(np.array([b"a"], dtype=object)) == []
    assert output_observations(np.zeros((0, 3), dtype=np.float32)) == []


def test_cpu_is_cpu_whatever_is_installed() -> None:
    assert plan_device("cpu", [CUDA, CPU]).providers == (CPU,)


def test_auto_takes_cuda_when_onnxruntime_offers_it() -> None:
    plan = plan_device("auto", [CUDA, CPU])
    assert plan.providers == (CUDA, CPU)
    assert not plan.require_cuda
    assert plan_device("auto", [CPU]).providers == (CPU,)


def test_cuda_demands_the_cuda_provider() -> None:
    assert plan_device("cuda", [CUDA, CPU]).require_cuda
    with pytest.raises(ModelLoadError, match="--device cuda: onnxruntime offers no CUDA"):
        plan_device("cuda", ["AzureExecutionProvider", CPU])


def test_the_device_is_read_from_the_providers_a_session_took() -> None:
    assert device_of([CUDA, CPU]) == "cuda"
    assert device_of([CPU]) == "cpu"


def test_only_models_dynamic_in_every_first_dimension_are_batchable() -> None:
    dynamic = TensorSpec("x", "FP32", (-1, 4))
    assert batchable((dynamic,), (TensorSpec("y", "FP32", (-1,)),))
    assert not batchable((dynamic,), (TensorSpec("y", "FP32", (1,)),))
    assert not batchable((TensorSpec("x", "FP32", (2, 4)),), (TensorSpec("y", "FP32", (-1,)),))
    assert not batchable((dynamic,), (TensorSpec("total", "FP32", ()),))
    assert not batchable((), (TensorSpec("y", "FP32", (-1,)),))


def test_the_gpu_wait_mode_is_reported_not_applied_without_a_cuda_runtime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No GPU here: every CUDA runtime soname fails to load, and nothing else changes.
    monkeypatch.setattr(cuda_wait, "_RUNTIMES", ("libcudart-absent.so.99",))
    assert cuda_wait.set_cuda_wait("block") is False
