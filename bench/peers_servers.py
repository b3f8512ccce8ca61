"""Starting the servers under test, pinned to one core, and reading their CPU time.

Every server runs as its own process group under `taskset -c SERVER_CORE`, so it and any
worker it forks (MLServer's inference worker) share one core and nothing else. CPU time is
read from /proc for the whole process tree (utime + stime of every descendant), which counts
all threads, including ones that exited, and does not depend on how fast the client is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import grpc
import httpx
from prometheus_client.parser import text_string_to_metric_families
from sluice_runtime.grpc.generated import inference_pb2 as pb
from sluice_runtime.grpc.generated import inference_pb2_grpc as pb_grpc

from bench.peers_env import KSERVE, MLSERVER, PEERS_DIR, ensure_peer
from tests.runtime.harness import free_port

SERVER_CORE = 0
CLIENT_CORE = 1
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 20.0
REPO = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Served:
    """The model a server is asked to serve, and where its canned answers are (do-nothing)."""

    name: str
    path: Path
    answers: Path


@dataclass(frozen=True)
class ServerConfig:
    """One server under test: `kind` picks the program, `batch` Sluice's --max-batch-size.

    `device`, `workers` and `cuda_wait` are Sluice's flags of those names; `cores` the taskset
    list the server's process tree gets.
    """

    label: str
    kind: str
    batch: int = 0
    batch_delay_us: int = 0
    device: str = "cpu"
    cores: str = str(SERVER_CORE)
    workers: int = 1
    cuda_wait: str = "block"


def _pythonpath(*extra: Path) -> dict[str, str]:
    parts = [str(path) for path in extra] + [str(REPO), str(REPO / "runtime")]
    parts += [part for part in os.environ.get("PYTHONPATH", "").split(os.pathsep) if part]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def _mlserver_folder(served: Served, workdir: Path, http: int, grpc_port: int) -> Path:
    """The settings MLServer reads: its defaults, free ports, and our runtime class."""
    folder = workdir / "mlserver"
    (folder / served.name).mkdir(parents=True, exist_ok=True)
    settings = {"http_port": http, "grpc_port": grpc_port, "metrics_port": free_port()}
    (folder / "settings.json").write_text(json.dumps(settings))
    model = {
        "name": served.name,
        "implementation": "mlserver_runtime.OnnxRuntimeModel",
        "parameters": {"uri": str(served.path)},
    }
    (folder / served.name / "model-settings.json").write_text(json.dumps(model))
    return folder


def command(
    config: ServerConfig,
    served: Served,
    workdir: Path,
    http: int,
    grpc_port: int,
    wrapper: Sequence[str] = (),
) -> tuple[list[str], dict[str, str]]:
    """The argv (under taskset, then `wrapper`: a profiler) and environment that start
    `config` serving `served`."""
    ports = ["--http-port", str(http), "--grpc-port", str(grpc_port)]
    if config.kind == "noop":
        argv = [sys.executable, "-m", "bench.peers_noop", *ports, "--answers", str(served.answers)]
        env = _pythonpath()
    elif config.kind == "sluice":
        argv = [
            sys.executable, "-m", "sluice_runtime", "serve", *ports,
            "--model-name", served.name, "--model-version", "1",
            "--model-uri", served.path.as_uri(), "--host", "127.0.0.1",
            "--max-batch-size", str(config.batch), "--cache-dir", str(workdir / "cache"),
            "--intra-op-threads", "1",
        ]  # fmt: skip
        if config.batch_delay_us:
            argv += ["--max-batch-delay-us", str(config.batch_delay_us)]
        argv += ["--device", config.device, "--workers", str(config.workers)]
        argv += ["--cuda-wait", config.cuda_wait]
        env = _pythonpath()
    elif config.kind == "kserve":
        python = ensure_peer(KSERVE) / "python"
        argv = [str(python), str(PEERS_DIR / "kserve_server.py"), *ports]
        argv += ["--model-name", served.name, "--model-path", str(served.path)]
        env = _pythonpath(PEERS_DIR)
    elif config.kind == "mlserver":
        mlserver = ensure_peer(MLSERVER) / "mlserver"
        argv = [str(mlserver), "start", str(_mlserver_folder(served, workdir, http, grpc_port))]
        env = _pythonpath(PEERS_DIR)
    else:
        raise ValueError(
            f"server kind {config.kind!r} is not one of noop, sluice, kserve, mlserver"
        )
    return ["taskset", "-c", config.cores, *wrapper, *argv], env


def parse_stat(text: str) -> tuple[int, int, int]:
    """(pid, ppid, utime + stime in clock ticks) from one /proc/<pid>/stat line.

    The command name sits in parentheses and may itself hold spaces or parentheses, so the
    fields are counted from the last ')'.
    """
    pid = int(text.split(" ", 1)[0])
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is state (field 3); ppid is field 4, utime 14, stime 15.
    return pid, int(fields[1]), int(fields[11]) + int(fields[12])


def tree_ticks(root: int, stats: Mapping[int, tuple[int, int]]) -> int:
    """CPU ticks of `root` and all its descendants, given pid -> (ppid, ticks)."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        if pid in stats:
            total += stats[pid][1]
        stack.extend(children.get(pid, ()))
    return total


def _read_stats() -> dict[int, tuple[int, int]]:
    stats: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                pid, ppid, ticks = parse_stat(handle.read())
        except (OSError, ValueError):
            continue  # the process ended while we looked
        stats[pid] = (ppid, ticks)
    return stats


@dataclass
class RunningServer:
    """A started server: its ports and its process tree's CPU seconds so far."""

    config: ServerConfig
    process: subprocess.Popen[bytes]
    http_port: int
    grpc_port: int
    log: Path

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def cpu_seconds(self) -> float:
        return tree_ticks(self.process.pid, _read_stats()) / CLOCK_TICKS

    def wait_ready(self, model_name: str, timeout: float = READY_TIMEOUT) -> None:
        """Until the model answers ready over REST and gRPC; the log tail if it never does."""
        deadline = time.monotonic() + timeout
        url = f"{self.http_url}/v2/models/{model_name}/ready"
        with httpx.Client(timeout=2.0) as client, grpc.insecure_channel(self.grpc_address) as ch:
            stub = pb_grpc.GRPCInferenceServiceStub(ch)
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                try:
                    if (
                        client.get(url).status_code == 200
                        and stub.ModelReady(
                            pb.ModelReadyRequest(name=model_name), timeout=2.0
                        ).ready
                        and self._workers_warm(client)
                    ):
                        return
                except (httpx.TransportError, grpc.RpcError):
                    pass
                time.sleep(0.1)
        tail = self.log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{self.config.label} never became ready; its log ends:\n{tail}")

    def _workers_warm(self, client: httpx.Client) -> bool:
        """With --workers, a ready answer is one worker's: all must have warmed up."""
        if self.config.workers == 1:
            return True
        text = client.get(f"{self.http_url}/metrics").text
        warm = {
            sample.labels.get("worker")
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "sluice_model_warmup_seconds" and sample.value > 0
        }
        return len(warm) == self.config.workers

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL if it lingers."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(STOP_TIMEOUT)
        # Workers that outlived their parent (MLServer's) are in the same group.
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


@contextmanager
def running(
    config: ServerConfig,
    served: Served,
    workdir: Path,
    wrapper: Sequence[str] = (),
    ready_timeout: float = READY_TIMEOUT,
) -> Iterator[RunningServer]:
    """Start `config` serving `served` on free ports, wait until ready, stop it afterwards."""
    http, grpc_port = free_port(), free_port()
    argv, env = command(config, served, workdir, http, grpc_port, wrapper)
    log = workdir / f"{config.label}-{served.name}.log"
    out: IO[bytes] = log.open("wb")
    process = subprocess.Popen(
        argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True
    )
    server = RunningServer(config, process, http, grpc_port, log)
    try:
        server.wait_ready(served.name, ready_timeout)
        yield server
    finally:
        server.stop()
        out.close()
