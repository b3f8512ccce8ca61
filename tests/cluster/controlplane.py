"""A local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (fake nodes, some with GPUs) on 127.0.0.1, from binaries built by
hack/deps.d/50-k8s-tools.sh.

One implementation serves people and tests: `make cluster-up` / `make cluster-down` run
`python -m tests.cluster.controlplane up|down`, and the pytest fixtures in conftest.py call
`attach`, `start` and `stop`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.cluster import processes
from tests.cluster.components import (
    BINARIES,
    KWOK_STAGES,
    Layout,
    Ports,
    admin_kubeconfig,
    apiserver_args,
    controller_manager_args,
    etcd_args,
    fake_nodes,
    kubeconfig,
    kwok_args,
    scheduler_args,
)
from tests.cluster.pki import Pki, create_pki

REPO = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO / ".cluster"
TOOLS_SCRIPT = REPO / "hack" / "deps.d" / "50-k8s-tools.sh"
START_TIMEOUT = 180.0
"""Generous: two shared cores may be busy compiling or testing something else."""
COMMAND_TIMEOUT = 300.0


class CommandError(RuntimeError):
    """A kubectl or helm command failed; the message carries its stderr."""


@dataclass
class ControlPlane:
    """A running control plane and the admin's way in.

    `kubectl` and `helm` run with this cluster's kubeconfig (or the one given) and keep their
    caches and config under the state folder, never in the user's home.
    """

    state_dir: Path
    bin_dir: Path
    server: str
    children: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)
    """Handles of the processes this object started (none when attached): holding them lets
    Python reap them quietly once `stop` has ended them."""

    @property
    def kubeconfig(self) -> Path:
        return Layout(self.state_dir).kubeconfig

    def env(self, kubeconfig: Path | None = None) -> dict[str, str]:
        home = Layout(self.state_dir).tools_home
        return {
            **os.environ,
            "KUBECONFIG": str(kubeconfig or self.kubeconfig),
            "KUBECACHEDIR": str(home / "kube-cache"),
            "HELM_CONFIG_HOME": str(home / "helm-config"),
            "HELM_CACHE_HOME": str(home / "helm-cache"),
            "HELM_DATA_HOME": str(home / "helm-data"),
        }

    def run(
        self,
        tool: str,
        *args: str,
        input: str | None = None,
        check: bool = True,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Runs one of the built tools; with `check`, a failure raises CommandError."""
        argv = [str(self.bin_dir / tool), *args]
        result = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            env=self.env(kubeconfig),
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if check and result.returncode != 0:
            raise CommandError(
                f"{tool} {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}"
            )
        return result

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        kubeconfig: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return self.run("kubectl", *args, input=input, check=check, kubeconfig=kubeconfig)

    def helm(
        self, *args: str, check: bool = True, kubeconfig: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.run("helm", *args, check=check, kubeconfig=kubeconfig)

    def create(self, *objects: dict[str, Any], validate: str = "strict") -> str:
        """`kubectl create` of manifests; returns stderr, where the API server's warnings land."""
        manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
        return self.kubectl("create", f"--validate={validate}", "-f", "-", input=manifest).stderr

    def create_namespace(self, name: str, timeout: float = 60.0) -> None:
        """Create a namespace and wait for its `default` ServiceAccount, so Pods can be admitted."""
        self.kubectl("create", "namespace", name)
        processes.wait_for(
            lambda: (
                self.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode
                == 0
            ),
            timeout,
            f"ServiceAccount {name}/default created by the controller manager",
        )

    def kubectl_json(self, *args: str) -> Any:
        """`kubectl get ... -o json`, parsed."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def service_account_kubeconfig(self, namespace: str, name: str, path: Path) -> Path:
        """Writes a kubeconfig that acts as exactly that ServiceAccount (a TokenRequest token)."""
        token = self.kubectl("create", "token", name, "-n", namespace, "--duration=1h").stdout
        ca_pem = Layout(self.state_dir).pki.ca_cert.read_bytes()
        config = kubeconfig(self.server, ca_pem, f"{namespace}.{name}", {"token": token.strip()})
        _write_private(path, yaml.safe_dump(config))
        return path


def find_bin_dir() -> Path:
    """The cached build for the pins in hack/k8s; a clear error when it was never built."""
    result = subprocess.run(
        ["bash", str(TOOLS_SCRIPT), "--bin-dir"], capture_output=True, text=True, check=True
    )
    bin_dir = Path(result.stdout.strip())
    missing = [name for name in (*BINARIES, KWOK_STAGES) if not (bin_dir / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"{', '.join(missing)} not in {bin_dir}: run `make system-deps` "
            f"({TOOLS_SCRIPT.relative_to(REPO)} builds them once per machine)"
        )
    return bin_dir


def _write_private(path: Path, text: str) -> None:
    """Kubeconfigs hold credentials: readable by their owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(text)


def _free_ports(count: int) -> list[int]:
    """Ports the kernel just handed out; all held at once, so they are distinct."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _admin_tls(pki: Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
    return context


def _self_signed_tls() -> ssl.SSLContext:
    """For /healthz of components that serve a certificate they made themselves."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _get(url: str, context: ssl.SSLContext | None = None) -> bytes | None:
    """The body of a 200 answer, or None while the server is not (yet) answering."""
    try:
        with urllib.request.urlopen(url, context=context, timeout=5) as response:
            body: bytes = response.read()
            return body
    except (urllib.error.URLError, OSError):
        return None


def _etcd_healthy(port: int) -> bool:
    body = _get(f"http://127.0.0.1:{port}/health")
    return body is not None and json.loads(body).get("health") == "true"


def _api_ready(server: str, pki: Pki) -> bool:
    return _get(f"{server}/readyz", _admin_tls(pki)) == b"ok"


def _healthz(port: int) -> bool:
    return _get(f"https://127.0.0.1:{port}/healthz", _self_signed_tls()) == b"ok"


def _ready_nodes(server: str, pki: Pki) -> int:
    body = _get(f"{server}/api/v1/nodes?labelSelector=type%3Dkwok", _admin_tls(pki))
    nodes = json.loads(body)["items"] if body else []
    return sum(
        any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in n["status"].get("conditions", [])
        )
        for n in nodes
    )


def attach(state_dir: Path, bin_dir: Path) -> ControlPlane | None:
    """The control plane recorded in `state_dir`, if its API server answers /readyz."""
    layout = Layout(state_dir)
    if not layout.kubeconfig.exists():
        return None
    config = yaml.safe_load(layout.kubeconfig.read_text())
    server = config["clusters"][0]["cluster"]["server"]
    if not _api_ready(server, layout.pki):
        return None
    return ControlPlane(state_dir, bin_dir, server)


class _Launcher:
    """Starts components one by one, recording each on disk at once so `stop` finds it."""

    def __init__(self, control_plane: ControlPlane) -> None:
        self.control_plane = control_plane
        self.layout = Layout(control_plane.state_dir)
        self.started: list[processes.Process] = []

    def launch(self, name: str, argv: Sequence[str]) -> processes.Process:
        process, child = processes.spawn(name, argv, self.layout.logs / f"{name}.log")
        self.control_plane.children.append(child)
        self.started.append(process)
        processes.save(self.started, self.layout.processes)
        return process


def start(state_dir: Path, bin_dir: Path) -> ControlPlane:
    """Starts a fresh control plane with its state in `state_dir`; returns once it all works.

    Ready means: etcd healthy, the API server's /readyz ok, the controller manager's and
    scheduler's /healthz ok, and every kwok node Ready. On failure everything started is
    stopped and the error carries the failing component's log.
    """
    layout = Layout(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    pki = create_pki(layout.pki.root)
    ports = Ports(*_free_ports(5))
    control_plane = ControlPlane(state_dir, bin_dir, f"https://127.0.0.1:{ports.apiserver}")
    launcher = _Launcher(control_plane)
    try:
        etcd = launcher.launch("etcd", etcd_args(bin_dir, layout, ports))
        processes.wait_ready(etcd, lambda: _etcd_healthy(ports.etcd_client), START_TIMEOUT)
        apiserver = launcher.launch("kube-apiserver", apiserver_args(bin_dir, layout, ports))
        processes.wait_ready(
            apiserver, lambda: _api_ready(control_plane.server, pki), START_TIMEOUT
        )
        _write_private(
            layout.kubeconfig, yaml.safe_dump(admin_kubeconfig(control_plane.server, pki))
        )

        manager = launcher.launch(
            "kube-controller-manager", controller_manager_args(bin_dir, layout, ports)
        )
        scheduler = launcher.launch("kube-scheduler", scheduler_args(bin_dir, layout, ports))
        kwok = launcher.launch("kwok", kwok_args(bin_dir, layout))
        nodes = fake_nodes()
        control_plane.create(*nodes)
        processes.wait_ready(manager, lambda: _healthz(ports.controller_manager), START_TIMEOUT)
        processes.wait_ready(scheduler, lambda: _healthz(ports.scheduler), START_TIMEOUT)
        processes.wait_ready(
            kwok, lambda: _ready_nodes(control_plane.server, pki) == len(nodes), START_TIMEOUT
        )
    except BaseException:
        processes.stop(launcher.started)
        raise
    return control_plane


def stop(state_dir: Path) -> None:
    """Stops every process recorded in `state_dir`, then removes the folder."""
    processes.stop(processes.load(Layout(state_dir).processes))
    shutil.rmtree(state_dir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.cluster.controlplane",
        description="Start or stop a local Kubernetes control plane on 127.0.0.1.",
    )
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    args = parser.parse_args(argv)
    state_dir: Path = args.state_dir.resolve()
    if args.command == "down":
        stop(state_dir)
        print(f"control plane stopped; {state_dir} removed")
        return 0
    try:
        bin_dir = find_bin_dir()
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 1
    running = attach(state_dir, bin_dir)
    if running is None:
        stop(state_dir)  # whatever a dead one left behind
        began = time.monotonic()
        try:
            running = start(state_dir, bin_dir)
        except (OSError, RuntimeError) as error:  # TimeoutError and CommandError among them
            print(f"control plane failed to start: {error}", file=sys.stderr)
            print(f"logs: {Layout(state_dir).logs}", file=sys.stderr)
            return 1
        print(f"control plane ready in {time.monotonic() - began:.1f}s at {running.server}")
    else:
        print(f"control plane already running at {running.server}")
    print(f"  export KUBECONFIG={running.kubeconfig}\n  export PATH={running.bin_dir}:$PATH")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
