"""A `sluice-runtime serve` subprocess and how tests reach it (used by conftest's fixture)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

READY_TIMEOUT = 90.0
STOP_TIMEOUT = 60.0


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RuntimeProcess:
    """One running `sluice-runtime serve` and how to reach it."""

    process: subprocess.Popen[bytes]
    http_port: int
    grpc_port: int
    log_path: Path
    model_name: str
    model_version: str
    _log_file: Any = field(repr=False)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def logs(self) -> str:
        """Everything the process wrote to stdout and stderr so far."""
        self._log_file.flush()
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll /v2/health/ready until 200; fail with the logs if the process dies first."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(
                        f"runtime exited with {self.process.returncode} before ready:\n"
                        + self.logs()
                    )
                try:
                    if client.get(f"{self.http_url}/v2/health/ready").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        raise AssertionError(f"runtime not ready after {timeout}s:\n{self.logs()}")

    def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int:
        """The exit code, once the process has ended by itself."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"runtime still running after {timeout}s:\n{self.logs()}"
            ) from None

    def stop(self, signum: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Send `signum` and return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.wait_exit(timeout)

    def metrics(self) -> dict[str, float]:
        """Every sample of /metrics as `name{label="v",...}` -> value (labels sorted)."""
        text = httpx.get(f"{self.http_url}/metrics", timeout=5.0).text
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
        return samples

    def metric(self, name: str, **labels: str) -> float:
        """The sum of `name`'s samples whose labels include `labels`."""
        wanted = [f'{k}="{v}"' for k, v in labels.items()]
        total = 0.0
        for key, value in self.metrics().items():
            sample_name, _, rest = key.partition("{")
            if sample_name == name and all(item in rest for item in wanted):
                total += value
        return total

    def wait_metric(self, name: str, at_least: float, timeout: float = 60, **labels: str) -> None:
        """Poll /metrics until `metric(name, **labels)` reaches `at_least`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.metric(name, **labels) >= at_least:
                return
            time.sleep(0.02)
        raise AssertionError(f"{name}{labels} never reached {at_least}:\n{self.logs()}")


def launch(
    uri: str,
    log_path: Path,
    *,
    launcher: Sequence[str] = (),
    env: dict[str, str] | None = None,
    **flags: Any,
) -> RuntimeProcess:
    """Start `sluice-runtime serve` on free 127.0.0.1 ports without waiting for it.

    Flags are the serve flags with '_' for '-' (max_batch_size=8). `launcher` prefixes the
    command (the benchmark pins the server with taskset). The parent's SLUICE_* variables are
    dropped so only what the caller passes configures the child.
    """
    flags.setdefault("model_name", "model")
    flags.setdefault("model_version", "1")
    flags.setdefault("http_port", free_port())
    flags.setdefault("grpc_port", free_port())
    flags.setdefault("host", "127.0.0.1")
    argv = [*launcher, sys.executable, "-m", "sluice_runtime", "serve", "--model-uri", uri]
    for name, value in flags.items():
        argv += ["--" + name.replace("_", "-"), str(value)]
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    child_env.update(env or {})
    log_file = log_path.open("wb")
    process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=child_env)
    return RuntimeProcess(
        process=process,
        http_port=int(flags["http_port"]),
        grpc_port=int(flags["grpc_port"]),
        log_path=log_path,
        model_name=str(flags["model_name"]),
        model_version=str(flags["model_version"]),
        _log_file=log_file,
    )


StartRuntime = Callable[..., RuntimeProcess]
