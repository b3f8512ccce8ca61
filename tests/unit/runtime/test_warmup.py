"""Warm-up feeds are built from input metadata: dynamic dims as 1 and as the max batch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from sluice_runtime.tensors import ModelMetadata, TensorSpec
from sluice_runtime.warmup import warm_up, warmup_batch_sizes, warmup_inputs


def metadata(inputs: tuple[TensorSpec, ...], max_batch_size: int) -> ModelMetadata:
    return ModelMetadata(
        name="m",
        version="1",
        platform="onnxruntime_onnx",
        inputs=inputs,
        outputs=(TensorSpec("y", "FP32", (-1,)),),
        max_batch_size=max_batch_size,
        device="cpu",
        digest="sha256:" + "0" * 64,
    )


BATCHED = metadata(
    (
        TensorSpec("x", "FP32", (-1, 64)),
        TensorSpec("tokens", "INT64", (-1, -1)),
        TensorSpec("text", "BYTES", (-1, 2)),
        TensorSpec("flag", "BOOL", (-1,)),
    ),
    max_batch_size=16,
)


def test_a_batched_model_is_warmed_at_one_and_at_the_max_batch_size() -> None:
    assert warmup_batch_sizes(BATCHED) == [1, 16]
    small, large = warmup_inputs(BATCHED)
    assert {name: a.shape for name, a in small.items()} == {
        "x": (1, 64),
        "tokens": (1, 1),
        "text": (1, 2),
        "flag": (1,),
    }
    assert {name: a.shape for name, a in large.items()} == {
        "x": (16, 64),
        "tokens": (16, 1),
        "text": (16, 2),
        "flag": (16,),
    }


def test_feeds_hold_zeros_of_the_declared_dtype_and_empty_strings() -> None:
    feed = warmup_inputs(BATCHED)[0]
    assert feed["x"].dtype == np.float32
    assert not feed["x"].any()
    assert feed["tokens"].dtype == np.int64
    assert feed["flag"].dtype == np.bool_
    assert feed["text"].dtype == object
    assert feed["text"].tolist() == [["", ""]]


@pytest.mark.parametrize("max_batch_size", [0, 1])
def test_an_unbatched_model_is_warmed_once_with_dynamic_dims_as_one(max_batch_size: int) -> None:
    spec = metadata((TensorSpec("x", "FP32", (-1, 3, -1)),), max_batch_size=max_batch_size)
    feeds = warmup_inputs(spec)
    assert [feed["x"].shape for feed in feeds] == [(1, 3, 1)]


def test_a_fixed_shape_is_kept_as_declared() -> None:
    spec = metadata((TensorSpec("x", "FP32", (2, 3)),), max_batch_size=0)
    assert warmup_inputs(spec)[0]["x"].shape == (2, 3)


def test_warm_up_runs_each_feed_the_requested_number_of_times() -> None:
    seen: list[tuple[int, ...]] = []

    def run(feed: Mapping[str, np.ndarray[Any, Any]]) -> dict[str, np.ndarray[Any, Any]]:
        seen.append(feed["x"].shape)
        return {}

    assert warm_up(run, BATCHED, requests=3) == 6
    assert seen == [(1, 64), (16, 64)] * 3
    assert warm_up(run, BATCHED, requests=0) == 0
