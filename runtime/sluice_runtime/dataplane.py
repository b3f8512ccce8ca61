"""The data plane: what REST and gRPC call, knowing nothing of either.

It owns the served model's life: loading (fetch, verify, session, warm-up),
readiness, draining, and every inference (validate, batch, pick outputs).
Transports only translate wire formats into these calls and errors back.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from typing import Any

import numpy as np

from sluice_runtime import __version__
from sluice_runtime.batcher import TIMER_TICK, Batcher
from sluice_runtime.batching import BatchPolicy
from sluice_runtime.datatypes import config_datatype
from sluice_runtime.errors import ModelNotFound, NotReady
from sluice_runtime.metrics import RuntimeMetrics
from sluice_runtime.model import PLATFORM, OnnxModel
from sluice_runtime.registry import fetch_model
from sluice_runtime.registry.metrics import RegistryMetrics
from sluice_runtime.settings import RuntimeSettings
from sluice_runtime.shadow import ShadowTee
from sluice_runtime.tensors import InferRequest, InferResponse, ModelMetadata, Tensor, TensorSpec
from sluice_runtime.validation import validate
from sluice_runtime.warmup import warm_up

log = logging.getLogger(__name__)

Array = np.ndarray[Any, Any]

EXTENSIONS = ("binary_tensor_data", "model_configuration")


class State(enum.Enum):
    """Where the served model is in its life; only READY answers ready."""

    LOADING = "loading"
    READY = "ready"
    DRAINING = "draining"
    FAILED = "failed"


class DataPlane:
    """One served model behind the Open Inference Protocol's operations."""

    def __init__(
        self, settings: RuntimeSettings, metrics: RuntimeMetrics, tee: ShadowTee | None = None
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._tee = tee  # copies answered requests to the shadow (shadow.py)
        self._state = State.LOADING
        self._metadata: ModelMetadata | None = None
        self._batcher: Batcher | None = None
        self._output_specs: dict[str, TensorSpec] = {}

    # -- life cycle (called by server.py) --------------------------------------------------

    async def load(self) -> None:
        """Fetch, verify, load and warm up the model, then turn ready.

        Blocking steps run in a thread so health checks are answered meanwhile.
        Raises ModelLoadError (or whatever the warm-up raised) and stays not ready.
        """
        try:
            model = await asyncio.to_thread(self._load_model)
            started = time.monotonic()
            await asyncio.to_thread(
                warm_up, model.run, model.metadata, self._settings.warmup_requests
            )
            self._metrics.warmup_seconds.set(time.monotonic() - started)
        except BaseException:
            self._state = State.FAILED
            raise
        policy = BatchPolicy(
            max_batch_size=model.metadata.max_batch_size,
            max_delay=self._settings.max_batch_delay_seconds,
            max_queue_size=self._settings.max_queue_size,
            tolerance=TIMER_TICK / 2,
        )
        self._batcher = Batcher(model.run, policy, self._metrics)
        self._batcher.start()
        self._output_specs = {spec.name: spec for spec in model.metadata.outputs}
        self._metadata = model.metadata
        if self._state is State.LOADING:
            self._state = State.READY
            log.info("ready: %s version %s", model.metadata.name, model.metadata.version)

    def _load_model(self) -> OnnxModel:
        started = time.monotonic()
        settings = self._settings
        fetched = fetch_model(
            settings.model_uri,
            settings.digest,
            settings.cache_dir,
            RegistryMetrics(self._metrics.registry),
        )
        model = OnnxModel(
            fetched.path,
            name=settings.model_name,
            version=settings.model_version,
            digest=fetched.digest,
            device=settings.device,
            max_batch_size=settings.max_batch_size,
            intra_op_threads=settings.intra_op_threads,
            cuda_wait=settings.cuda_wait,
        )
        self._metrics.load_seconds.set(time.monotonic() - started)
        return model

    def begin_drain(self) -> None:
        """Answer not ready from now on; requests already accepted still complete."""
        if self._state is not State.FAILED:
            self._state = State.DRAINING

    async def close(self) -> None:
        """Finish queued work and stop the batcher (after the transports have stopped)."""
        self.begin_drain()
        if self._batcher is not None:
            await self._batcher.stop()

    # -- health and metadata ---------------------------------------------------------------

    @property
    def metadata(self) -> ModelMetadata:
        """The served model's metadata; NotReady until it is loaded."""
        if self._metadata is None:
            raise NotReady(
                f"model {self._settings.model_name!r} is not ready ({self._state.value})"
            )
        return self._metadata

    def live(self) -> bool:
        """The process is up and its loop turns: true from the start."""
        return True

    def ready(self) -> bool:
        """True only between a finished warm-up and the start of draining."""
        return self._state is State.READY

    def server_metadata(self) -> dict[str, Any]:
        """The server's name, version and protocol extensions."""
        return {"name": "sluice", "version": __version__, "extensions": list(EXTENSIONS)}

    def model_metadata(self, name: str, version: str | None) -> ModelMetadata:
        """Metadata of the served model; ModelNotFound for any other name or version."""
        self._check_served(name, version)
        return self.metadata

    def model_ready(self, name: str, version: str | None) -> bool:
        """Readiness of the served model; ModelNotFound for any other name or version."""
        self._check_served(name, version)
        return self.ready()

    def model_config(self, name: str, version: str | None) -> dict[str, Any]:
        """A minimal Triton model configuration (what perf_analyzer reads)."""
        self._check_served(name, version)
        return triton_config(self.metadata)

    def _check_served(self, name: str, version: str | None) -> None:
        settings = self._settings
        if name != settings.model_name:
            raise ModelNotFound(
                f"model {name!r} is not served here (serving {settings.model_name!r})"
            )
        if version not in (None, "", settings.model_version):
            raise ModelNotFound(
                f"model {name!r} version {version!r} is not served here "
                f"(serving version {settings.model_version!r})"
            )

    # -- inference ---------------------------------------------------------------------------

    async def infer(
        self, name: str, version: str | None, request: InferRequest, *, mirror: bool = True
    ) -> InferResponse:
        """Validate, queue, run and answer one request with the outputs it asked for.

        With a shadow configured, the answered request is offered to the tee (never awaited);
        `mirror=False` is for requests that are themselves shadow copies.
        """
        started = time.perf_counter()
        self._check_served(name, version)
        if self._batcher is None or self._metadata is None:
            raise NotReady(f"model {name!r} is not ready ({self._state.value})")
        metadata = self._metadata
        valid = validate(metadata, request)
        outputs = await self._batcher.submit(valid.inputs, valid.rows)
        observe = self._metrics.output.observe
        for value in output_observations(outputs[metadata.outputs[0].name]):
            observe(value)
        asked = {output.name: output.parameters for output in request.outputs or ()}
        tensors = []
        for name in valid.output_names:
            spec, data = self._output_specs[name], outputs[name]
            parameters = dict(asked.get(name) or {})
            tensors.append(Tensor(spec.name, spec.datatype, data.shape, data, parameters))
        response = InferResponse(metadata.name, metadata.version, request.id, tensors)
        if mirror and self._tee is not None:
            self._tee.offer(request, response, time.perf_counter() - started)
        return response


def output_observations(output: Array) -> list[float]:
    """What the output histogram records for one request, one value per row.

    Classifier-shaped outputs (floats with a class axis) give the top class index;
    anything else gives each row's first value. Text outputs give nothing.
    """
    if output.dtype.kind not in "biuf" or output.size == 0:
        return []
    if output.ndim == 0:
        return [float(output)]
    if output.dtype.kind == "f" and output.ndim >= 2 and output.shape[-1] > 1:
        indices: list[float] = output.argmax(axis=-1).ravel().tolist()
        return indices
    firsts: list[float] = output.reshape(output.shape[0], -1)[:, 0].astype(np.float64).tolist()
    return firsts


def triton_config(metadata: ModelMetadata) -> dict[str, Any]:
    """Triton's model configuration for the served model.

    With max_batch_size > 0, Triton leaves the batch dimension out of `dims`;
    perf_analyzer relies on that to build its requests.
    """
    batched = metadata.max_batch_size > 0

    def entry(spec: TensorSpec) -> dict[str, Any]:
        dims = spec.shape[1:] if batched else spec.shape
        return {"name": spec.name, "data_type": config_datatype(spec.datatype), "dims": list(dims)}

    return {
        "name": metadata.name,
        "platform": PLATFORM,
        "backend": "onnxruntime",
        "max_batch_size": metadata.max_batch_size,
        "input": [entry(spec) for spec in metadata.inputs],
        "output": [entry(spec) for spec in metadata.outputs],
    }
