"""E2E tier: real nginx on the operator's rendered router config, real runtime processes.

Everything listens on free 127.0.0.1 ports. Runtimes come from the runtime tier's
`start_runtime` factory (re-exported here), routers from `start_router`, which renders the
config with `sluice_operator.router` exactly as the operator fills the router ConfigMap.
Every process a test starts is stopped when it ends.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from sluice_operator.router import Upstream

from tests.e2e.nginx import Nginx, nginx_binary
from tests.models import mlp
from tests.runtime.conftest import start_runtime
from tests.runtime.harness import free_port

__all__ = ["start_runtime"]  # the runtime tier's factory, used by this tier too

StartRouter = Callable[..., Nginx]
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Models:
    """The MLPs the tier serves: `stable`, a byte-identical `twin`, and a `different` one."""

    stable: Path
    twin: Path
    different: Path


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    folder = tmp_path_factory.mktemp("models")
    return Models(
        stable=mlp(folder / "stable.onnx", seed=0),
        twin=mlp(folder / "twin.onnx", seed=0),
        different=mlp(folder / "different.onnx", seed=1),
    )


@pytest.fixture(scope="session")
def nginx() -> str:
    """The nginx binary; the tier fails (it does not skip) when it is missing."""
    try:
        return nginx_binary()
    except RuntimeError as error:
        pytest.fail(str(error))


@pytest.fixture
def start_router(tmp_path: Path, nginx: str) -> Iterator[StartRouter]:
    """Factory: start_router(upstreams, sticky_header=None, **RouterConfig options) -> Nginx."""
    started: list[Nginx] = []

    def start(
        upstreams: Sequence[Upstream], sticky_header: str | None = None, **options: object
    ) -> Nginx:
        router = Nginx(tmp_path / f"nginx-{len(started)}", nginx)
        started.append(router)
        return router.start(router.config(upstreams, sticky_header, **options))

    yield start
    for router in started:
        router.stop()


@dataclass
class FaultyShadow:
    """A stand-in shadow that answers every request late or with an error status."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def start_faulty_shadow() -> Iterator[Callable[..., FaultyShadow]]:
    """Factory: start_faulty_shadow(delay_seconds=2.0, status=200) on a free port."""
    started: list[FaultyShadow] = []

    def start(delay_seconds: float = 0.0, status: int = 200) -> FaultyShadow:
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "tests.e2e.faulty_server",
            "--port",
            str(port),
            "--delay",
            str(delay_seconds),
            "--status",
            str(status),
        ]
        shadow = FaultyShadow(subprocess.Popen(argv, cwd=REPO), port)
        started.append(shadow)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert shadow.process.poll() is None, "faulty shadow server exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return shadow
            except OSError:
                time.sleep(0.02)
        raise AssertionError("faulty shadow server did not listen in time")

    yield start
    for shadow in started:
        shadow.process.kill()
        shadow.process.wait(10)
