"""Debian's nginx running the operator's rendered router config, as a plain process.

The config text comes from `sluice_operator.router.render`, the function that fills the
router ConfigMap in a cluster; only the upstream addresses, listen ports and runtime folder
differ (127.0.0.1 ports, a temporary folder). Used by tests/e2e and bench/traffic.py.

Reloads go through `nginx -s reload` as an operator-driven config change would; `reload`
returns once the master has started workers on the new config (new connections get it).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import IO

import httpx
from sluice_operator.router import RouterConfig, Upstream, render

from tests.runtime.harness import RuntimeProcess, free_port

START_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0


def nginx_binary() -> str:
    """The nginx that hack/deps.d/30-nginx.sh installs; a clear error when it is missing."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if not found:
        raise RuntimeError(
            "nginx is not installed: run `make system-deps` (hack/deps.d/30-nginx.sh)"
        )
    return found


def upstream(revision: str, runtime: RuntimeProcess, weight: int) -> Upstream:
    """A runtime process as a router upstream."""
    return Upstream(
        revision=revision,
        http=f"127.0.0.1:{runtime.http_port}",
        grpc=f"127.0.0.1:{runtime.grpc_port}",
        weight=weight,
    )


class Nginx:
    """One nginx master on free 127.0.0.1 ports, its config rendered by the router builder."""

    def __init__(
        self, workdir: Path, binary: str | None = None, launcher: Sequence[str] = ()
    ) -> None:
        self.workdir = workdir
        self.binary = binary or nginx_binary()
        self.launcher = list(launcher)  # e.g. ["taskset", "-c", "1"] in the benchmark
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.health_port = free_port()
        self.conf_path = workdir / "nginx.conf"
        self.log_path = workdir / "nginx.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def config(
        self, upstreams: Sequence[Upstream], sticky_header: str | None = None, **options: object
    ) -> RouterConfig:
        """The router config for these upstreams on this process's ports and folder."""
        base = RouterConfig(
            upstreams=tuple(upstreams),
            sticky_header=sticky_header,
            listen_host="127.0.0.1",
            http_port=self.http_port,
            grpc_port=self.grpc_port,
            health_port=self.health_port,
            runtime_dir=str(self.workdir),
        )
        return replace(base, **options)  # type: ignore[arg-type]

    def _argv(self, *extra: str, conf: Path | None = None) -> list[str]:
        argv = [self.binary, "-p", f"{self.workdir}/", "-c", str(conf or self.conf_path)]
        if os.geteuid() == 0:
            # Workers would otherwise switch to `nobody`; the tests run nginx as themselves.
            argv += ["-g", f"user {pwd.getpwuid(0).pw_name};"]
        return argv + list(extra)

    def _write(self, config: RouterConfig | str) -> None:
        staged = self.conf_path.with_suffix(".next")
        staged.write_text(config if isinstance(config, str) else render(config))
        check = subprocess.run(
            self._argv("-t", conf=staged), capture_output=True, text=True, check=False
        )
        if check.returncode != 0:
            raise AssertionError(f"nginx refuses the rendered config:\n{check.stderr}")
        staged.replace(self.conf_path)

    def start(self, config: RouterConfig | str) -> Nginx:
        """Write the config, start the master and wait until the health port answers.

        `config` is a router config, or nginx.conf text that listens on `health_port` too.
        """
        self._write(config)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*self.launcher, *self._argv()], stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(
                        f"nginx exited with {self.process.returncode}:\n{self.logs()}"
                    )
                try:
                    if (
                        client.get(f"http://127.0.0.1:{self.health_port}/healthz").status_code
                        == 200
                    ):
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.02)
        raise AssertionError(f"nginx not answering after {START_TIMEOUT}s:\n{self.logs()}")

    def workers(self) -> dict[int, bool]:
        """The master's worker pids, each with whether it still takes new connections."""
        assert self.process is not None
        return _workers(self.process.pid)

    def reload(self, config: RouterConfig) -> None:
        """Swap the config with `nginx -s reload`; return once new workers run it."""
        before = self.workers()
        wanted = sum(before.values())
        self._write(config)
        subprocess.run(self._argv("-s", "reload"), check=True, capture_output=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            now = self.workers()
            fresh = [pid for pid, active in now.items() if active and pid not in before]
            retired = all(not now.get(pid, False) for pid in before)
            if len(fresh) >= wanted and retired:
                return
            time.sleep(0.01)
        raise AssertionError(f"nginx did not start new workers after reload:\n{self.logs()}")

    def logs(self) -> str:
        """Error log and access log lines so far."""
        if self._log is not None:
            self._log.flush()
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """Graceful stop (SIGQUIT), then kill master and workers if they linger."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            workers = list(_workers(process.pid))
            process.send_signal(signal.SIGQUIT)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT)
                for pid in workers:  # a killed master leaves its workers running
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None


def _workers(master: int) -> dict[int, bool]:
    """Children of an nginx master; workers told to quit retitle as "... is shutting down".

    A worker that is exiting while we look reads as missing (ENOENT), gone (ESRCH) or, as a
    zombie not yet reaped, with an empty command line; all three are counted as gone.
    """
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except (FileNotFoundError, ProcessLookupError):
        return {}
    workers: dict[int, bool] = {}
    for child in children:
        try:
            title = Path(f"/proc/{child}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if title:
            workers[int(child)] = b"shutting down" not in title
    return workers
