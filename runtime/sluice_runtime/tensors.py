"""Transport-neutral request, response and tensor types.

REST and gRPC decode into these and encode from them; the data plane, the
validator and the batcher see nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

Parameters = dict[str, Any]


@dataclass(slots=True)
class Tensor:
    """A named tensor: `data` is a numpy array already in `shape` (BYTES as object array)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray[Any, Any]
    parameters: Parameters = field(default_factory=dict)


@dataclass(slots=True)
class RequestedOutput:
    """An output the client asked for, with its encoding preference (binary extension)."""

    name: str
    parameters: Parameters = field(default_factory=dict)


@dataclass(slots=True)
class InferRequest:
    """One client request; `outputs` None means every model output."""

    id: str
    inputs: list[Tensor]
    outputs: list[RequestedOutput] | None = None
    parameters: Parameters = field(default_factory=dict)


@dataclass(slots=True)
class InferResponse:
    """The answer to one request, in the order the client asked for outputs."""

    model_name: str
    model_version: str
    id: str
    outputs: list[Tensor]
    parameters: Parameters = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """An input or output as the model declares it; -1 marks a dynamic dimension."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ModelMetadata:
    """What the runtime serves: the pinned version, its tensors and how it runs."""

    name: str
    version: str
    platform: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch_size: int  # 0 when the model has no dynamic batch dimension
    device: str  # "cpu" or "cuda"
    digest: str  # sha256:<hex> of the served model file
