"""Start, watch and stop the control plane's long-running processes.

Each component runs in a session (and so a process group) of its own, so that `make
cluster-up` can exit and leave it running, and so that stopping it signals the whole group.
A process is recorded by pid *and* start time: after a reboot or a crash, a stale state file
must never lead us to signal some unrelated process that reused the pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Process:
    """One started component: enough to find it again from another Python process."""

    name: str
    pid: int
    start_ticks: int
    log: str


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) from /proc, or None when there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces and parens
    return fields[0], int(fields[19])


def is_alive(process: Process) -> bool:
    """True while the very process we started runs (a zombie or a reused pid is not it)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(process.pid, os.WNOHANG)  # reap it if it is our own exited child
    stat = _stat(process.pid)
    return stat is not None and stat[0] != "Z" and stat[1] == process.start_ticks


def spawn(name: str, argv: Sequence[str], log: Path) -> tuple[Process, subprocess.Popen[bytes]]:
    """Starts `argv` in a new session with its output appended to `log`.

    The Popen handle is returned so that an owner that lives as long as the process (the
    pytest session) can hold it; the Process record is what gets written to disk.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stat = _stat(child.pid)
    return Process(name, child.pid, stat[1] if stat else -1, str(log)), child


def log_tail(process: Process, lines: int = 25) -> str:
    """The end of a component's log, to put in an error about that component."""
    try:
        text = Path(process.log).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Polls a real signal until it holds, or raises TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not so after {timeout:.0f}s")
        time.sleep(POLL_SECONDS)


def wait_ready(process: Process, probe: Callable[[], bool], timeout: float) -> None:
    """Polls `probe` until it holds; fails at once, with the log, if the process exits."""

    def ready() -> bool:
        if probe():
            return True
        if not is_alive(process):
            raise RuntimeError(f"{process.name} exited during start-up:\n{log_tail(process)}")
        return False

    try:
        wait_for(ready, timeout, f"{process.name} ready")
    except TimeoutError as error:
        raise TimeoutError(f"{error}\n{log_tail(process)}") from None


def _signal_group(process: Process, sig: signal.Signals) -> None:
    if is_alive(process):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)


def _wait_gone(process: Process, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_alive(process):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS / 4)
    return True


def stop(processes: Sequence[Process], grace: float = 10.0) -> None:
    """Stops components in reverse start order: SIGTERM to the group, SIGKILL after `grace`."""
    for process in reversed(processes):
        _signal_group(process, signal.SIGTERM)
        if not _wait_gone(process, grace):
            _signal_group(process, signal.SIGKILL)
            if not _wait_gone(process, grace):
                raise RuntimeError(f"{process.name} (pid {process.pid}) survived SIGKILL")


def save(processes: Sequence[Process], path: Path) -> None:
    path.write_text(json.dumps([asdict(p) for p in processes], indent=2))


def load(path: Path) -> list[Process]:
    """The processes recorded in `path`; none when the file is missing."""
    if not path.exists():
        return []
    return [Process(**entry) for entry in json.loads(path.read_text())]
