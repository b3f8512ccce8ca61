"""The do-nothing server: Sluice's HTTP and gRPC stack answering with canned bytes.

The floor for Sluice's serving overhead: the same FastAPI app on uvicorn (uvloop, httptools,
no access log) and the same gRPC server (Sluice's HTTP/2 code, `sluice_runtime.grpc`), in
one event loop, as `sluice_runtime.server` runs, but the infer routes only read the request
and return a prepared answer (the model's true output for the bench input, so the client checks
pass and the bytes on the wire match a real answer). No decoding, no model, no metrics.

    python -m bench.peers_noop --http-port P --grpc-port Q --answers DIR
DIR holds answer.json, answer.bin and answer.grpc (bench/peers_bodies.py writes them) and
answer.bin.header (the binary answer's JSON header length).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
import uvloop
from fastapi import FastAPI
from sluice_runtime.grpc import GrpcServer
from sluice_runtime.grpc.connection import Method
from sluice_runtime.grpc.generated import inference_pb2 as pb
from sluice_runtime.grpc.servicer import SERVICE
from sluice_runtime.grpc.wire import RequestHead
from sluice_runtime.listeners import listen
from starlette.requests import Request
from starlette.responses import Response

from bench.peers_bodies import BINARY_TYPE, HEADER_LENGTH, JSON_TYPE


class _Answers:
    """The canned answers, read once at start."""

    def __init__(self, folder: Path) -> None:
        self.json = (folder / "answer.json").read_bytes()
        self.binary = (folder / "answer.bin").read_bytes()
        self.binary_header = (folder / "answer.bin.header").read_text().strip()
        self.grpc = (folder / "answer.grpc").read_bytes()


def create_app(answers: _Answers) -> FastAPI:
    """Health routes and an infer route that reads the body and answers without looking."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    async def ready(request: Request) -> Response:
        return Response(b'{"ready":true}', media_type=JSON_TYPE)

    async def infer(request: Request) -> Response:
        await request.body()
        if HEADER_LENGTH in request.headers:
            headers = {HEADER_LENGTH: answers.binary_header}
            return Response(answers.binary, media_type=BINARY_TYPE, headers=headers)
        return Response(answers.json, media_type=JSON_TYPE)

    for path in ("/v2/health/ready", "/v2/models/{model_name}/ready"):
        app.router.add_route(path, ready, methods=["GET"], include_in_schema=False)
    app.router.add_route("/v2/models/{model_name}/infer", infer, methods=["POST"])
    return app


def grpc_methods(answers: _Answers) -> dict[str, Method]:
    """ModelInfer returns the canned answer without parsing; readiness is always true."""
    ready = {
        "ServerReady": pb.ServerReadyResponse(ready=True).SerializeToString(),
        "ModelReady": pb.ModelReadyResponse(ready=True).SerializeToString(),
        "ModelInfer": answers.grpc,
    }

    def canned(answer: bytes) -> Method:
        async def method(body: bytes, head: RequestHead) -> bytes:
            return answer

        return Method(unary=method)

    return {SERVICE + name: canned(answer) for name, answer in ready.items()}


async def serve(http_port: int, grpc_port: int, answers: _Answers) -> None:
    """Both listeners in one loop until uvicorn's own SIGTERM/SIGINT handling stops it."""
    grpc_server = GrpcServer(grpc_methods(answers), max_message_bytes=64 * 1024 * 1024)
    await grpc_server.start(listen("127.0.0.1", grpc_port))
    config = uvicorn.Config(
        create_app(answers),
        host="127.0.0.1",
        port=http_port,
        loop="none",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_config=None,
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        await grpc_server.stop(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--answers", type=Path, required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.http_port, args.grpc_port, _Answers(args.answers)))


if __name__ == "__main__":
    main()
