"""`python -m bench.peers_profile`: a flame graph of one server under the benchmark's load.

Starts the server as the benchmark does (pinned to the server core), drives it with the same
client at one protocol and concurrency, and records it meanwhile with py-spy (the `[bench]`
extra), which samples the process from outside: no instrumentation inside the server, so the
profile is of the code that runs in production. Writes an SVG flame graph.

    python -m bench.peers_profile --server sluice --protocol rest-json --concurrency 16 \
        --out bench/results/flame-sluice-rest-json.svg
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.peers_env import find_tools
from bench.peers_load import PROTOCOLS, Client
from bench.peers_run import MODELS, SERVERS, WORK, prepare
from bench.peers_servers import CLIENT_CORE, running


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers_profile", description=__doc__)
    parser.add_argument("--server", default="sluice", choices=sorted(SERVERS))
    parser.add_argument("--model", default="mlp", choices=[m.key for m in MODELS])
    parser.add_argument("--protocol", default="rest-json", choices=PROTOCOLS)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    parser.add_argument("--format", default="flamegraph", choices=["flamegraph", "raw"])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    model = next(m for m in MODELS if m.key == args.model)
    WORK.mkdir(parents=True, exist_ok=True)
    prepared = prepare(model, WORK)
    client = Client(find_tools(), prepared.bodies, WORK / f"{model.key}-requests")
    with running(SERVERS[args.server], prepared.served, WORK) as server:
        client.run(server, model.key, args.protocol, args.concurrency, 1)
        record = [py_spy, "record", "--pid", str(server.process.pid), "--subprocesses"]
        record += ["--rate", str(args.rate), "--duration", str(args.seconds + 1)]
        record += ["--format", args.format, "--output", str(args.out)]
        recorder = subprocess.Popen(["taskset", "-c", str(CLIENT_CORE), *record])
        result = client.run(server, model.key, args.protocol, args.concurrency, args.seconds)
        recorder.wait()
    print(
        f"{args.server} {args.protocol} c{args.concurrency}: {result.rps:.0f} req/s while "
        f"profiled; flame graph in {args.out}",
        file=sys.stderr,
    )
    return recorder.returncode


if __name__ == "__main__":
    raise SystemExit(main())
