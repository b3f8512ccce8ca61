"""Warm-up: run the model on inputs built from its own metadata before answering ready.

The first runs of an ONNX Runtime session allocate memory arenas and pick kernels;
doing that before readiness keeps the first real requests from paying for it. Each
batch size the batcher will use is exercised, since arenas are sized per shape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from sluice_runtime.datatypes import numpy_dtype
from sluice_runtime.tensors import ModelMetadata, TensorSpec

log = logging.getLogger(__name__)

Array = np.ndarray[Any, Any]
Runner = Callable[[dict[str, Array]], dict[str, Array]]


def warmup_batch_sizes(metadata: ModelMetadata) -> list[int]:
    """1 and the max batch size for a batched model; just 1 otherwise."""
    if metadata.max_batch_size > 1:
        return [1, metadata.max_batch_size]
    return [1]


def warmup_shape(spec: TensorSpec, batch: int, batched: bool) -> tuple[int, ...]:
    """The spec's shape with the batch dimension as `batch` and other dynamic ones as 1."""
    shape = [1 if dim == -1 else dim for dim in spec.shape]
    if batched and shape:
        shape[0] = batch
    return tuple(shape)


def warmup_inputs(metadata: ModelMetadata) -> list[dict[str, Array]]:
    """One model-ready feed per warm-up batch size: zeros, or empty strings for BYTES.

    Zeros are the safest values: a valid index for gathers, a valid class id, no NaNs.
    """
    batched = metadata.max_batch_size > 0
    feeds = []
    for batch in warmup_batch_sizes(metadata):
        feed: dict[str, Array] = {}
        for spec in metadata.inputs:
            shape = warmup_shape(spec, batch, batched)
            if spec.datatype == "BYTES":
                feed[spec.name] = np.full(shape, "", dtype=object)
            else:
                feed[spec.name] = np.zeros(shape, dtype=numpy_dtype(spec.datatype))
        feeds.append(feed)
    return feeds


def warm_up(run: Runner, metadata: ModelMetadata, requests: int) -> int:
    """Run every warm-up feed `requests` times; returns how many runs were made.

    Blocking: the caller runs it in a thread. Any failure propagates, and the caller
    treats it as a load failure: a model that cannot answer zeros is not served.
    """
    feeds = warmup_inputs(metadata)
    runs = 0
    for _ in range(requests):
        for feed in feeds:
            run(feed)
            runs += 1
    log.info("warm-up: %d runs at batch sizes %s", runs, warmup_batch_sizes(metadata))
    return runs
