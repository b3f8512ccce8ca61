"""`python -m bench.instructions` (`make bench-instructions`): instructions per gRPC call.

CPU time per call on a shared machine drifts by a third within an hour, which hides a
change of a few percent; the instructions a call retires do not drift. This runs each server
(Sluice with batching off, and the do-nothing server, the transport's floor) under valgrind's
callgrind on the benchmark MLP, warms it up with grpcload, then counts with callgrind_control
an idle window and a loaded one of the same length (grpcload, one call in flight); the
figure is (loaded - idle) / calls answered. Both of the server's threads, user space only:
the kernel is not counted. Runs of one build differ by 1-2% (the client's pings and the
loop's turns per call depend on timing). Needs valgrind (Debian package `valgrind`).
Writes bench/results/instructions.md.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path

from bench.machine import commit
from bench.peers_env import find_tools
from bench.peers_load import Client
from bench.peers_run import MODELS, SERVERS, WORK, prepare
from bench.peers_servers import REPO, RunningServer, Served, running

RESULTS = REPO / "bench" / "results" / "instructions.md"
SERVED = ("noop", "sluice")
READY_TIMEOUT = 900.0  # onnxruntime's import alone takes a minute under valgrind
_TOTALS = re.compile(r"^totals:\s+(\d+)", re.MULTILINE)


def _control(server: RunningServer, action: str) -> None:
    """Zero (`-z`) or dump (`-d`) the counters of the server's valgrind process."""
    subprocess.run(
        ["callgrind_control", action, str(server.process.pid)], check=True, capture_output=True
    )


def _dumped(out: Path, part: int) -> int:
    """Instructions in callgrind's dump number `part` (1, 2, ... in the order they were asked)."""
    text = Path(f"{out}.{part}").read_text()
    found = _TOTALS.search(text)
    if found is None:
        raise RuntimeError(f"no totals in {out}.{part}")
    return int(found.group(1))


def count(
    label: str, served: Served, client: Client, seconds: int, workdir: Path
) -> tuple[int, int]:
    """(instructions per call, calls counted) for one server at one call in flight."""
    out = workdir / f"callgrind-{label}.out"
    wrapper = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no"]
    with running(SERVERS[label], served, workdir, wrapper, READY_TIMEOUT) as server:
        client.run(server, "mlp", "grpc", 1, 3)  # warm-up: imports, first calls, caches
        _control(server, "-z")
        time.sleep(seconds)
        _control(server, "-d")  # part 1: idle
        loaded = client.run(server, "mlp", "grpc", 1, seconds)
        _control(server, "-d")  # part 2: loaded
    if loaded.errors or not loaded.requests:
        raise RuntimeError(f"{label}: {loaded.errors} errors, {loaded.requests} calls")
    idle, busy = _dumped(out, 1), _dumped(out, 2)
    return (busy - idle) // loaded.requests, loaded.requests


def page(figures: dict[str, tuple[int, int]], seconds: int) -> str:
    """bench/results/instructions.md."""
    lines = [
        "# Instructions per gRPC call",
        "",
        f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by "
        f"`python -m bench.instructions`, Sluice `{commit()}`.",
        "",
        "valgrind's callgrind counts the user-space instructions of the server's threads; "
        f"grpcload sends the benchmark MLP's ModelInfer with one call in flight for {seconds} s; "
        "the figure is that window's count less an idle window's, per call answered "
        "(see the module docstring). Unlike CPU time, it does not move with the machine.",
        "",
        "| server | instructions per call | calls counted |",
        "| --- | ---: | ---: |",
    ]
    for label, (per_call, calls) in figures.items():
        lines.append(f"| {label} | {per_call:,} | {calls:,} |")
    noop, sluice = figures["noop"][0], figures["sluice"][0]
    lines += [
        "",
        f"Sluice's own part, beyond its transport: {sluice - noop:,} instructions per call.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="idle and loaded windows")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    prepared = prepare(MODELS[0], WORK)
    client = Client(find_tools(), prepared.bodies, WORK / "mlp-requests")
    figures: dict[str, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory(prefix="sluice-callgrind-") as folder:
        for label in SERVED:
            figures[label] = count(label, prepared.served, client, args.seconds, Path(folder))
            print(f"{label}: {figures[label][0]:,} instructions per call")
    args.out.write_text(page(figures, args.seconds))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
