"""The KServe peer: a small `kserve.Model` running an ONNX model with onnxruntime.

Runs inside the KServe bench virtualenv (never Sluice's), started by bench/peers_servers.py:
    python kserve_server.py --model-name mlp --model-path model.onnx \
        --http-port 8080 --grpc-port 8081
This is the model a KServe user writes for a custom predictor: `load` opens the session and
`predict` runs it and lets KServe's helper build the V2 answer. Everything else (REST V2 with
the binary extension, gRPC, logging, workers) is KServe's own default. The session takes the
same options Sluice's does (bench/peers/session.py), so the comparison measures serving.
"""

from __future__ import annotations

import argparse
from typing import Any

from kserve import InferRequest, InferResponse, Model, ModelServer
from kserve.utils.utils import get_predict_response
from session import open_session


class OnnxModel(Model):  # type: ignore[misc]
    """One ONNX model; `predict` is synchronous, which KServe calls on its event loop."""

    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self._path = path
        self._session: Any = None
        self._input = ""

    def load(self) -> bool:
        self._session = open_session(self._path)
        self._input = self._session.get_inputs()[0].name
        self.ready = True
        return True

    def predict(
        self, payload: InferRequest, headers: dict[str, str] | None = None
    ) -> InferResponse:
        batch = payload.inputs[0].as_numpy()
        result = self._session.run(None, {self._input: batch})[0]
        response: InferResponse = get_predict_response(payload, result, self.name)
        return response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    args, _ = parser.parse_known_args()
    model = OnnxModel(args.model_name, args.model_path)
    model.load()
    ModelServer(http_port=args.http_port, grpc_port=args.grpc_port).start([model])


if __name__ == "__main__":
    main()
