"""`--workers N`: N worker processes serving the same ports, each with its own event loop.

One event loop is one core's worth of request handling; on a GPU, or a pod with several
CPUs, the loop is the bound long before the model is. The supervisor binds the HTTP and
gRPC sockets once and forks the workers, which share them (the kernel hands each new
connection to one worker); each worker loads its own model session, so N workers hold N
copies of the model (and N CUDA contexts on a GPU).

The supervisor holds no model and serves nothing. SIGTERM or SIGINT is passed to every
worker, which drains as a single process would. If a worker exits on its own, the others
are stopped and the supervisor exits non-zero: Kubernetes restarts the container, so a
broken worker is never left behind a healthy-looking pod. Workers get SIGTERM should the
supervisor die (PR_SET_PDEATHSIG), so none outlives it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from sluice_runtime.libc import libc_function
from sluice_runtime.settings import RuntimeSettings

log = logging.getLogger(__name__)

EXIT_FAILED = 1
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerSlot:
    """Which worker of a `--workers` set this process is, and where the set meets."""

    folder: Path
    index: int


# What a worker runs: the settings, the shared sockets and its slot; returns its exit code.
WorkerMain = Callable[[RuntimeSettings, list[socket.socket], WorkerSlot], int]


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _die_with_parent() -> None:
    prctl = libc_function("prctl")
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    """Forks the workers, forwards stop signals, and stops all when one fails."""

    def __init__(self, settings: RuntimeSettings, sockets: list[socket.socket]) -> None:
        self._settings = settings
        self._sockets = sockets
        self._workers: dict[int, int] = {}  # pid -> worker index
        self._stopping = False

    def run(self, worker_main: WorkerMain) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        with tempfile.TemporaryDirectory(prefix="sluice-workers-") as folder:
            for index in range(self._settings.workers):
                self._fork(worker_main, Path(folder), index)
            for bound in self._sockets:
                bound.close()  # the workers hold them; the supervisor never accepts
            return self._wait()

    def _fork(self, worker_main: WorkerMain, folder: Path, index: int) -> None:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # else the worker writes the supervisor's buffered lines again
        pid = os.fork()
        if pid == 0:  # the worker
            code = EXIT_FAILED
            try:
                # Stopped before its loop takes over SIGTERM (while loading): a clean exit.
                signal.signal(signal.SIGTERM, _exit_cleanly)
                signal.signal(signal.SIGINT, _exit_cleanly)
                _die_with_parent()
                code = worker_main(self._settings, self._sockets, WorkerSlot(folder, index))
            except SystemExit as stopped:
                code = stopped.code if isinstance(stopped.code, int) else EXIT_FAILED
            except BaseException:
                log.exception("worker %d failed", index)
            finally:
                logging.shutdown()
                os._exit(code)
        self._workers[pid] = index
        log.info("worker %d started (pid %d)", index, pid)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info(
            "received %s: stopping %d workers", signal.Signals(signum).name, len(self._workers)
        )
        self._stop_all()

    def _stop_all(self) -> None:
        self._stopping = True
        for pid in self._workers:
            with contextlib.suppress(ProcessLookupError):  # gone already: waitpid collects it
                os.kill(pid, signal.SIGTERM)

    def _wait(self) -> int:
        code = 0
        while self._workers:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            index = self._workers.pop(pid, None)
            if index is None:
                continue
            exit_code = os.waitstatus_to_exitcode(status)
            if not self._stopping:
                log.error(
                    "worker %d exited by itself (code %d): stopping the others", index, exit_code
                )
                self._stop_all()
                code = EXIT_FAILED
            elif exit_code != 0:
                code = code or EXIT_FAILED
            log.info("worker %d stopped (code %d)", index, exit_code)
        return code
