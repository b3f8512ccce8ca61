"""`python -m bench.peers_run`: Sluice against KServe and MLServer, same model, same client.

In each of `repeats` rounds, for each model: start every server pinned to the server core,
check that each answers onnxruntime's numbers on its protocols, then at each protocol and
concurrency warm up and measure each server in turn with wrk or grpcload pinned to the
client core (the others idle meanwhile; their CPU is recorded). Each
figure is the median over the rounds. Writes bench/results/peers.md and the rows as
bench/results/peers.json. `--quick` is a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import onnx
import onnxruntime as ort

from bench.peers_bodies import (
    Array,
    Bodies,
    bench_input,
    binary_answer,
    grpc_answer,
    json_answer,
    request_bodies,
)
from bench.peers_env import KSERVE, MLSERVER, PEERS_DIR, Tools, ensure_peer, find_tools
from bench.peers_load import Client, binary_refused, check_answers
from bench.peers_page import Floor, write_page
from bench.peers_report import Point, Row, Sample, Settings, summarize
from bench.peers_servers import (
    CLIENT_CORE,
    REPO,
    SERVER_CORE,
    RunningServer,
    Served,
    ServerConfig,
    running,
)
from tests.models import mlp

RESULTS = REPO / "bench" / "results"
WORK = REPO / "bench" / ".work" / "peers"
ALL = ("rest-json", "rest-binary", "grpc")
BATCH = 64
BATCH_DELAY_US = 500

SERVERS = {
    "noop": ServerConfig("noop", "noop"),
    "sluice": ServerConfig("sluice", "sluice"),
    "sluice-batch": ServerConfig("sluice-batch", "sluice", BATCH, BATCH_DELAY_US),
    "kserve": ServerConfig("kserve", "kserve"),
    "mlserver": ServerConfig("mlserver", "mlserver"),
}


@dataclass(frozen=True)
class BenchModel:
    """A model of the matrix: its MLP shape and the protocols each server is measured on."""

    key: str
    title: str
    shape: tuple[int, int, int]
    plan: dict[str, tuple[str, ...]]


MODELS = (
    BenchModel(
        "mlp",
        "MLP 64-256-10 (`tests/models.py` `mlp()`), batch 1 per request",
        (64, 256, 10),
        {
            "noop": ALL,
            "sluice": ALL,
            "sluice-batch": ALL,
            "kserve": ALL,
            "mlserver": ("rest-json", "grpc"),  # no binary extension (checked: it answers 422)
        },
    ),
    BenchModel(
        "big",
        "MLP 1024-4096-16 (4.2 M parameters, 17 MB), batch 1 per request",
        (1024, 4096, 16),
        {name: ("grpc",) for name in ("sluice", "sluice-batch", "kserve", "mlserver")},
    ),
)


@dataclass(frozen=True)
class Prepared:
    """A built model: what servers load, what clients send, what they must get back."""

    model: BenchModel
    served: Served
    bodies: Bodies
    expected: Array


def prepare(model: BenchModel, folder: Path) -> Prepared:
    """Build the model file, the bench request, and the do-nothing server's canned answers."""
    inputs, hidden, outputs = model.shape
    path = mlp(folder / f"{model.key}.onnx", inputs=inputs, hidden=hidden, outputs=outputs)
    graph = onnx.load(str(path), load_external_data=False).graph
    input_name, output_name = graph.input[0].name, graph.output[0].name
    array = bench_input(inputs)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    expected: Array = session.run(None, {input_name: array})[0]
    answers = folder / f"{model.key}-answers"
    answers.mkdir(parents=True, exist_ok=True)
    (answers / "answer.json").write_bytes(json_answer(model.key, output_name, expected))
    body, header = binary_answer(model.key, output_name, expected)
    (answers / "answer.bin").write_bytes(body)
    (answers / "answer.bin.header").write_text(str(header))
    (answers / "answer.grpc").write_bytes(grpc_answer(model.key, output_name, expected))
    bodies = request_bodies(model.key, input_name, array)
    return Prepared(model, Served(model.key, path, answers), bodies, expected)


def measure_floor(
    path: Path, batch: int, seconds: int, device: str = "cpu", cores: str = str(SERVER_CORE)
) -> Floor:
    """Raw onnxruntime in-process on the server's cores (bench/peers/floor.py)."""
    argv = ["taskset", "-c", cores, sys.executable, str(PEERS_DIR / "floor.py")]
    argv += [str(path), "--batch", str(batch), "--seconds", str(seconds), "--device", device]
    doc = json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)
    return Floor(
        batch=batch,
        rows_per_s=batch * doc["runs"] / doc["seconds"],
        p50_ms=1e3 * doc["p50_s"],
        p99_ms=1e3 * doc["p99_s"],
        cpu_ms_per_row=1e3 * doc["cpu_seconds"] / (doc["runs"] * batch),
    )


def measure_once(
    client: Client, server: RunningServer, point: Point, settings: Settings, round_: int,
    others: Sequence[RunningServer] = (),
) -> Sample:  # fmt: skip
    """Warm up, then one run with the server tree's CPU seconds around it (and the CPU of
    `others`, servers idle on the same core meanwhile, so the page can show it is small)."""
    client.run(server, point.model, point.protocol, point.concurrency, settings.warmup)
    before = server.cpu_seconds()
    others_before = sum(other.cpu_seconds() for other in others)
    got = client.run(server, point.model, point.protocol, point.concurrency, settings.seconds)
    cpu = server.cpu_seconds() - before
    others_cpu = sum(other.cpu_seconds() for other in others) - others_before
    sample = Sample(
        got.requests, got.seconds, got.p50_ms, got.p99_ms, got.errors, cpu, got.client_cpu_s,
        others_cpu,
    )  # fmt: skip
    print(
        f"round {round_ + 1} {point.model:4} {point.server:13} {point.protocol:12} "
        f"c{point.concurrency:<3} {got.rps:9.0f} req/s  p50 {got.p50_ms:7.3f} ms  "
        f"p99 {got.p99_ms:7.3f} ms  cpu {1e3 * cpu / max(got.requests, 1):6.3f} ms/req  "
        f"errors {got.errors}",
        file=sys.stderr,
        flush=True,
    )
    return sample


def measure_point(client: Client, server: RunningServer, point: Point, settings: Settings) -> Row:
    """`repeats` runs of one point back to back, for a benchmark with one server (the GPU's)."""
    runs = [measure_once(client, server, point, settings, run) for run in range(settings.repeats)]
    return summarize(point, runs)


def measure_round(
    prepared: Prepared, plan: Mapping[str, tuple[str, ...]], client: Client,
    settings: Settings, round_: int, notes: list[str],
) -> dict[Point, Sample]:  # fmt: skip
    """One round on one model: every server of `plan` started at once and checked, then at
    each point every server measured in turn while the others sit idle on the same core, so
    the figures a ratio compares are taken seconds apart, not minutes."""
    name = prepared.served.name
    with ExitStack() as stack:
        servers = {
            label: stack.enter_context(running(SERVERS[label], prepared.served, WORK))
            for label in plan
        }
        for label, server in servers.items():
            protocols = plan[label]
            check_answers(server, name, prepared.bodies, prepared.expected, protocols)
            if round_ == 0 and SERVERS[label].kind == "mlserver" and "rest-binary" not in protocols:
                status = binary_refused(server, name, prepared.bodies)
                notes.append(f"{label}: a binary tensor extension request gets HTTP {status}")
        measured: dict[Point, Sample] = {}
        for protocol in ALL:
            for concurrency in settings.concurrency:
                for label, server in servers.items():
                    if protocol not in plan[label]:
                        continue
                    point = Point(prepared.model.key, protocol, concurrency, label)
                    others = [other for key, other in servers.items() if key != label]
                    measured[point] = measure_once(client, server, point, settings, round_, others)
        return measured


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.peers_run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 s, one repeat, c1 and c16")
    parser.add_argument("--seconds", type=int, default=2, help="per measurement (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="per point (default 3)")
    parser.add_argument("--concurrency", default="1,16,64", help="comma-separated levels")
    parser.add_argument("--models", default="mlp,big", help="comma-separated: mlp, big")
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated")
    parser.add_argument("--protocols", default=",".join(ALL), help="comma-separated")
    parser.add_argument("--out", type=Path, default=RESULTS / "peers.md")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings(
        seconds=1 if args.quick else args.seconds,
        warmup=1,
        repeats=1 if args.quick else args.repeats,
        concurrency=(1, 16) if args.quick else tuple(int(c) for c in args.concurrency.split(",")),
        batch=BATCH,
        batch_delay_us=BATCH_DELAY_US,
    )
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("the peer benchmark needs two cores: one for servers, one for clients")
    os.sched_setaffinity(0, {CLIENT_CORE})  # the driver stays off the server's core
    tools: Tools = find_tools()
    chosen = set(args.servers.split(","))
    for peer in (KSERVE, MLSERVER):
        if peer.name in chosen:
            ensure_peer(peer)
    WORK.mkdir(parents=True, exist_ok=True)
    samples: dict[Point, list[Sample]] = {}
    floors: dict[str, list[Floor]] = {}
    notes: list[str] = []
    titles: dict[str, str] = {}
    prepared_models = []
    for model in MODELS:
        if model.key not in args.models.split(","):
            continue
        prepared = prepare(model, WORK)
        titles[model.key] = model.title
        floors[model.key] = [
            measure_floor(prepared.served.path, b, settings.seconds) for b in (1, BATCH)
        ]
        client = Client(tools, prepared.bodies, WORK / f"{model.key}-requests")
        prepared_models.append((prepared, client))
    wanted = args.protocols.split(",")
    # Rounds, not back-to-back repeats, and within a round every server at each point in
    # turn: a slow spell of the machine touches the servers a ratio compares alike, rather
    # than whichever one happened to be running.
    for round_ in range(settings.repeats):
        for prepared, client in prepared_models:
            plan = {
                label: tuple(protocol for protocol in planned if protocol in wanted)
                for label, planned in prepared.model.plan.items()
                if label in chosen
            }
            plan = {label: protocols for label, protocols in plan.items() if protocols}
            if plan:
                measured = measure_round(prepared, plan, client, settings, round_, notes)
                for point, sample in measured.items():
                    samples.setdefault(point, []).append(sample)
    rows = {point: summarize(point, found) for point, found in samples.items()}
    write_page(args.out, rows, floors, titles, settings, notes, load)
    args.out.with_suffix(".json").write_text(
        json.dumps([row.as_dict() for row in rows.values()], indent=1) + "\n"
    )
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
