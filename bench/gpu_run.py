"""`python -m bench.gpu_run`: Sluice on a GPU against raw onnxruntime-gpu on the same GPU.

Issue 7's GPU point: the heavier model (the 4.2 M-parameter MLP of the peer benchmark) with
onnxruntime-gpu, at batch 1 and batch 32. The floor is raw onnxruntime-gpu in-process, back
to back on one numpy batch (floor.py --device cuda: each run copies the batch to the GPU and
the answer back, as a server's must). Sluice runs with `--device cuda` and is loaded over gRPC
by grpcload with requests of 1 and of 32 rows, batching off; then with single-row requests and
dynamic batching up to 32 rows, the way a server meets many small clients. Each Sluice row's
rows/s is compared with the floor at the batch size its model runs see. Only a machine with an
NVIDIA GPU runs this (the CI machines have none); results go to bench/results/gpu.md and .json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import onnx
import onnxruntime as ort
from sluice_runtime.grpc.generated import inference_pb2 as pb
from sluice_runtime.grpc.generated import inference_pb2_grpc as pb_grpc

from bench.gpu_page import GpuRow, write_gpu_page
from bench.machine import commit
from bench.peers_bodies import Array, decode_grpc_answer, request_bodies
from bench.peers_env import Tools, find_tools
from bench.peers_load import Client, Spread
from bench.peers_page import Floor
from bench.peers_report import Point, Settings
from bench.peers_run import MODELS, RESULTS, measure_floor, measure_point
from bench.peers_servers import REPO, RunningServer, Served, ServerConfig, running
from tests.models import mlp

WORK = REPO / "bench" / ".work" / "gpu"
BIG_BATCH = 32
BATCH_DELAY_US = 500
MERGE = 256  # rows per run when batch-32 requests are merged
# A relative error bound for the GPU's answer against raw onnxruntime-gpu's on the same rows:
# cuBLAS may pick another kernel (and summation order) for another batch size.
TOLERANCE = 1e-3


@dataclass(frozen=True)
class Scenario:
    """Rows per request (the floor batch it is compared to), the server's batching, workers."""

    label: str
    rows: int
    batch: int
    workers: int = 1
    cuda_wait: str = "block"


def scenarios(workers: Sequence[int]) -> list[Scenario]:
    """One worker: batch 1, batch 32 and batching to 32; then each worker count of `workers`,
    with batch-32 requests also merged up to MERGE rows per run."""
    found = [
        Scenario("sluice-gpu", 1, 0),
        Scenario("sluice-gpu", BIG_BATCH, 0),
        Scenario("sluice-gpu-batch", 1, BIG_BATCH),
        Scenario("sluice-gpu-merge", BIG_BATCH, MERGE),
    ]
    for count in workers:
        found.append(Scenario("sluice-gpu", BIG_BATCH, 0, count))
        found.append(Scenario("sluice-gpu-batch", 1, BIG_BATCH, count))
        found.append(Scenario("sluice-gpu-merge", BIG_BATCH, MERGE, count))
    # The same batch-32 point with CUDA's default spin-wait: what --cuda-wait block saves.
    found.append(Scenario("sluice-gpu-spin", BIG_BATCH, 0, workers[0], "spin"))
    return found


def _check(server: RunningServer, body: bytes, expected: Array) -> float:
    """One request; its answer's relative error against raw onnxruntime-gpu's."""
    with grpc.insecure_channel(server.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        answer = stub.ModelInfer(pb.ModelInferRequest.FromString(body), timeout=30)
    got = decode_grpc_answer(answer.SerializeToString())
    error = float(np.linalg.norm(got - expected) / np.linalg.norm(expected))
    if got.shape != expected.shape or not error < TOLERANCE:
        raise SystemExit(f"{server.config.label}: answer off by {error:.2e} ({got.shape})")
    return error


def _expected(path: Path, array: Array, device: str) -> Array:
    """Raw onnxruntime's answer for `array` on `device`: what Sluice's must equal."""
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        providers.insert(0, "CUDAExecutionProvider")
    session = ort.InferenceSession(str(path), providers=providers)
    answer: Array = session.run(None, {session.get_inputs()[0].name: array})[0]
    return answer


def run(args: argparse.Namespace, tools: Tools) -> tuple[list[Floor], list[GpuRow]]:
    model = next(m for m in MODELS if m.key == "big")
    inputs, hidden, outputs = model.shape
    WORK.mkdir(parents=True, exist_ok=True)
    path = mlp(WORK / "big.onnx", inputs=inputs, hidden=hidden, outputs=outputs)
    input_name = onnx.load(str(path), load_external_data=False).graph.input[0].name
    settings = Settings(args.seconds, args.warmup, args.repeats, (), BIG_BATCH, BATCH_DELAY_US)
    floors = {
        b: measure_floor(path, b, args.seconds, args.device, args.server_cores)
        for b in (1, BIG_BATCH)
    }
    for floor in floors.values():
        print(f"floor batch {floor.batch}: {floor.rows_per_s:,.0f} rows/s", file=sys.stderr)
    served = Served("big", path, WORK)
    rows: list[GpuRow] = []
    chosen = [s for s in scenarios(args.workers) if not args.only or s.label in args.only]
    for scenario in chosen:
        array = np.random.default_rng(scenario.rows).standard_normal((scenario.rows, inputs))
        array = array.astype(np.float32)
        bodies = request_bodies("big", input_name, array)
        config = ServerConfig(
            scenario.label,
            "sluice",
            scenario.batch,
            BATCH_DELAY_US if scenario.batch else 0,
            device=args.device,
            cores=args.server_cores,
            workers=scenario.workers,
            cuda_wait=scenario.cuda_wait,
        )
        spread = Spread(args.client_cores, args.client_procs, args.connections)
        client = Client(tools, bodies, WORK / f"requests-{scenario.rows}", spread)
        with running(config, served, WORK) as server:
            error = _check(server, bodies.grpc, _expected(path, array, args.device))
            for concurrency in args.concurrency:
                label = f"{scenario.label}-w{scenario.workers}"
                point = Point(f"big-x{scenario.rows}", "grpc", concurrency, label)
                row = measure_point(client, server, point, settings)
                floor = floors[scenario.rows]
                rows.append(
                    GpuRow(row, scenario.rows, scenario.batch, scenario.workers, floor, error)
                )
    return list(floors.values()), rows


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_run", description=__doc__)
    parser.add_argument("--seconds", type=int, default=5, help="per measurement (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds before each point")
    parser.add_argument("--repeats", type=int, default=3, help="per point (default 3)")
    parser.add_argument("--concurrency", default="1,16,64", help="comma-separated levels")
    parser.add_argument("--server-cores", default="0-7", help="taskset list for the server")
    parser.add_argument("--client-cores", default="8-15", help="taskset list for grpcload")
    parser.add_argument("--client-procs", type=int, default=4, help="grpcload's OS threads")
    parser.add_argument("--connections", type=int, default=8, help="grpcload's connections")
    parser.add_argument("--workers", default="4", help="comma-separated --workers counts")
    parser.add_argument("--only", default="", help="comma-separated server labels to run")
    parser.add_argument("--grpcload", type=Path, help="the grpcload binary (default: cached)")
    parser.add_argument("--out", type=Path, default=RESULTS / "gpu.md")
    parser.add_argument("--commit", default=commit(), help="the commit measured (for the page)")
    parser.add_argument(
        "--device", choices=("cuda", "cpu"), default="cuda", help="cpu: a smoke run, no GPU"
    )
    args = parser.parse_args(argv)
    args.concurrency = tuple(int(c) for c in args.concurrency.split(","))
    args.workers = tuple(int(w) for w in args.workers.split(","))
    args.only = tuple(label for label in args.only.split(",") if label)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.grpcload is None:
        tools = find_tools()
    else:
        tools = Tools(wrk=Path(shutil.which("wrk") or "wrk"), grpcload=args.grpcload)
    floors, rows = run(args, tools)
    write_gpu_page(args.out, floors, rows, args)
    args.out.with_suffix(".json").write_text(
        json.dumps(
            {
                "floors": [floor.__dict__ for floor in floors],
                "rows": [row.as_dict() for row in rows],
            },
            indent=1,
        )
    )
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
