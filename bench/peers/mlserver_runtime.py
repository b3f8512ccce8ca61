"""The MLServer peer: a custom runtime running an ONNX model with onnxruntime.

Runs inside the MLServer bench virtualenv (never Sluice's). bench/peers_servers.py writes a
settings.json and a model-settings.json naming `mlserver_runtime.OnnxRuntimeModel` and starts
`mlserver start`, with this folder on PYTHONPATH. This is the runtime an MLServer user writes:
`load` opens the session, `predict` decodes the first input with MLServer's NumpyCodec, runs
it and encodes every output. Everything else is MLServer's default, including
`parallel_workers` (1: inference runs in a separate worker process).
"""

from __future__ import annotations

from typing import Any

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from session import open_session


class OnnxRuntimeModel(MLModel):  # type: ignore[misc]
    """One ONNX model; the file path comes from model-settings.json `parameters.uri`."""

    async def load(self) -> bool:
        self._session: Any = open_session(self.settings.parameters.uri)
        self._input = self._session.get_inputs()[0].name
        self._outputs = [output.name for output in self._session.get_outputs()]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        batch = NumpyCodec.decode_input(payload.inputs[0])
        results = self._session.run(self._outputs, {self._input: batch})
        return InferenceResponse(
            model_name=self.name,
            id=payload.id,
            outputs=[
                NumpyCodec.encode_output(name, value)
                for name, value in zip(self._outputs, results, strict=True)
            ],
        )
