"""`sluice-runtime`: serve a model, or fetch one for an init container.

The only place that parses arguments, reads the process environment, sets up
logging and installs signal handlers; everything it calls takes plain values.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import uvloop

from sluice_runtime import __version__
from sluice_runtime.allocator import tune_malloc
from sluice_runtime.registry.commands import add_commands as add_registry_commands
from sluice_runtime.registry.commands import run as run_registry_command
from sluice_runtime.settings import (
    RuntimeSettings,
    SettingsError,
    env_name,
    flag_name,
    resolve_settings,
)

if TYPE_CHECKING:
    from sluice_runtime.supervisor import WorkerSlot

log = logging.getLogger("sluice_runtime")

EXIT_USAGE = 2

_HELP = {
    "model_name": "name the model is served under",
    "model_version": "version the model is served as (pinned, never 'latest')",
    "model_uri": "where the model lives: file:///path/model.onnx, a folder holding one, ...",
    "digest": "sha256:<hex> the model file must hash to; a mismatch refuses to serve",
    "max_batch_size": "rows merged per model run; 0 turns dynamic batching off",
    "max_batch_delay_us": "longest a request waits for others to join its batch",
    "max_queue_size": "requests waiting past which new ones get 429 / RESOURCE_EXHAUSTED",
    "warmup_requests": "warm-up rounds before answering ready (0 skips warm-up)",
    "device": "auto (CUDA when present), cpu or cuda (fail without a GPU)",
    "cuda_wait": "how a run waits for the GPU: block (sleep, frees the core) or spin",
    "intra_op_threads": "onnxruntime threads per model run; 0 = one per host core",
    "drain_seconds": "grace period after SIGTERM for in-flight requests",
    "shadow_url": "runtime to copy a share of requests to (traffic mirroring)",
    "shadow_percent": "share of requests copied to --shadow-url",
    "workers": "processes serving the same ports, each with its own event loop and model copy",
}


def build_parser() -> argparse.ArgumentParser:
    """The command line; every serve flag also reads SLUICE_<FLAG> (the flag wins)."""
    parser = argparse.ArgumentParser(prog="sluice-runtime", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve one model over REST and gRPC")
    for field, info in RuntimeSettings.model_fields.items():
        default = "" if info.is_required() else f" (default {info.default})"
        serve.add_argument(
            flag_name(field),
            dest=field,
            default=None,
            metavar=field.split("_")[-1].upper(),
            help=f"{_HELP.get(field, field.replace('_', ' '))}{default}; env {env_name(field)}",
        )

    add_registry_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `sluice-runtime` script and `python -m sluice_runtime`."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command in ("fetch", "resolve"):
        return run_registry_command(args, os.environ)
    try:
        settings = resolve_settings(vars(args), os.environ)
    except SettingsError as error:
        print(f"sluice-runtime serve: {error}", file=sys.stderr)
        return EXIT_USAGE
    tune_malloc()
    if settings.workers == 1:
        return uvloop.run(_serve(settings))
    return _supervise(settings)


def _supervise(settings: RuntimeSettings) -> int:
    # Imported here so `fetch` (an init container) never loads the serving stack.
    from sluice_runtime.listeners import bind_listeners
    from sluice_runtime.supervisor import EXIT_FAILED, Supervisor

    sockets = bind_listeners(settings)
    if sockets is None:
        return EXIT_FAILED
    return Supervisor(settings, sockets).run(_run_worker)


def _run_worker(settings: RuntimeSettings, sockets: list[socket.socket], slot: WorkerSlot) -> int:
    return uvloop.run(_serve(settings, sockets, slot))


async def _serve(
    settings: RuntimeSettings,
    sockets: list[socket.socket] | None = None,
    worker: WorkerSlot | None = None,
) -> int:
    from sluice_runtime.server import serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _on_signal, signum, stop)
    return await serve(settings, stop, sockets=sockets, worker=worker)


def _on_signal(signum: int, stop: asyncio.Event) -> None:
    log.info("received %s", signal.Signals(signum).name)
    stop.set()
