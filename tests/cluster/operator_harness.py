"""The operator as the chart runs it, for tests/cluster/test_operator*.py.

The chart is installed with helm (CRD, ServiceAccount, RBAC); the operator runs as a local
process, `sluice-operator`, with a kubeconfig holding a token of the chart's ServiceAccount, so
every call it makes is authorized by exactly what the chart grants. Its Prometheus metrics are
read over HTTP, as Prometheus would.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from prometheus_client.parser import text_string_to_metric_families
from sluice_operator import spec

from tests.cluster import processes
from tests.cluster.controlplane import REPO, ControlPlane
from tests.runtime.harness import free_port

CHART = REPO / "charts" / "sluice"
START_TIMEOUT = 60.0
READY_TIMEOUT = 120.0
GROUP, VERSION, PLURAL = spec.API_GROUP, spec.API_VERSION, spec.PLURAL
RESOURCES = {
    "Deployment": "deployments.apps",
    "Service": "services",
    "ConfigMap": "configmaps",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers.autoscaling",
    "PodDisruptionBudget": "poddisruptionbudgets.policy",
    "Pod": "pods",
}
CHILD_KINDS = tuple(kind for kind in RESOURCES if kind != "Pod")  # what the operator writes


@dataclass
class Operator:
    """A running `sluice-operator` process and its metrics endpoint."""

    argv: list[str]
    log_path: Path
    metrics_port: int
    health_port: int
    process: processes.Process | None = None

    def start(self) -> Operator:
        """Spawn the process and wait for kopf's /healthz."""
        self.process, _ = processes.spawn("sluice-operator", self.argv, self.log_path)
        processes.wait_ready(self.process, self.healthy, START_TIMEOUT)
        return self

    def metrics(self) -> dict[str, float]:
        """Every sample as `name{label=value,...}` -> value."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
        return samples

    def total(self, prefix: str) -> float:
        """The sum of every sample whose name starts with `prefix` (all label sets)."""
        return sum(v for k, v in self.metrics().items() if k.startswith(prefix + "{"))

    def writes(self) -> float:
        """Objects written so far: applies, relabels, deletions, status writes, events."""
        return self.total("sluice_operator_objects_written_total")

    def reconciliations(self) -> float:
        return self.total("sluice_operator_reconciliations_total")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}/healthz", timeout=2
            ) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def log(self, lines: int = 60) -> str:
        return processes.log_tail(self.process, lines) if self.process else "(not started)"

    def stop(self) -> None:
        if self.process is not None:
            processes.stop([self.process])

    def kill(self) -> None:
        """SIGKILL: no goodbye, no cleanup, as a crashed or evicted pod."""
        process = self.process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        processes.wait_for(lambda: not processes.is_alive(process), 30, "operator killed")


def install_chart(cluster: ControlPlane, namespace: str, *values: str) -> str:
    """The chart in `namespace`, watching only it (plus `--set` values); returns the release."""
    release = f"sluice-{secrets.token_hex(3)}"
    cluster.helm(
        "install", release, str(CHART), "--namespace", namespace,
        f"--set=operator.watchNamespaces={{{namespace}}}",
        "--set=metrics.service.enabled=false",
        *(f"--set={value}" for value in values),
        "--wait=false",
    )  # fmt: skip
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}", "--timeout=60s")
    return release


def start_operator(
    kubeconfig: Path,
    namespace: str,
    log: Path,
    resync_seconds: float = 300.0,
    peering: tuple[str, ...] = ("--standalone",),
) -> Operator:
    """`sluice-operator --namespace NS --standalone` (or `peering` flags) as the chart's
    ServiceAccount."""
    metrics_port, health_port = free_port(), free_port()
    argv = [
        "env",
        f"KUBECONFIG={kubeconfig}",
        str(Path(sys.executable).with_name("sluice-operator")),
        f"--namespace={namespace}",
        *peering,
        f"--metrics-port={metrics_port}",
        f"--health-port={health_port}",
        f"--resync-seconds={resync_seconds}",
        "--runtime-image=registry.local/sluice-runtime:test",
        "--drain-seconds=1",
        "--log-level=DEBUG",
    ]
    return Operator(argv, log, metrics_port, health_port).start()


def admin_api(cluster: ControlPlane) -> client.ApiClient:
    """A client with the cluster admin's credentials, for what the tests themselves do."""
    return config.new_client_from_config(config_file=str(cluster.kubeconfig))


class Cluster:
    """What the tests read and write through the API server (as admin)."""

    def __init__(self, cluster: ControlPlane, namespace: str) -> None:
        self.control_plane = cluster
        self.namespace = namespace
        api = admin_api(cluster)
        self.custom = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.api = api

    def apply(self, manifest: dict[str, Any]) -> None:
        """kubectl apply (server-side), as a GitOps tool would."""
        self.control_plane.kubectl(
            "apply", "--server-side", "--field-manager=gitops", "-n", self.namespace, "-f", "-",
            input=json.dumps(manifest),
        )  # fmt: skip

    def isvc(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )
        return found

    def condition(self, name: str, kind: str) -> dict[str, Any] | None:
        status = self.isvc(name).get("status") or {}
        return next((c for c in status.get("conditions", []) if c["type"] == kind), None)

    def is_ready(self, name: str) -> bool:
        """Ready=True for the current generation."""
        body = self.isvc(name)
        status = body.get("status") or {}
        ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)
        return (
            ready is not None
            and ready["status"] == "True"
            and status.get("observedGeneration") == body["metadata"]["generation"]
        )

    def wait_ready(self, name: str, operator: Operator, timeout: float = READY_TIMEOUT) -> float:
        """Seconds until Ready; on timeout the error carries status and the operator's log."""
        began = time.monotonic()
        try:
            processes.wait_for(lambda: self.is_ready(name), timeout, f"{name} Ready")
        except TimeoutError as error:
            status = json.dumps(self.isvc(name).get("status"), indent=1)
            raise TimeoutError(f"{error}\nstatus: {status}\noperator:\n{operator.log()}") from None
        return time.monotonic() - began

    def objects(self, kind: str, isvc: str) -> dict[str, dict[str, Any]]:
        """Children of one kind by name, as the API server returns them (JSON)."""
        plural = RESOURCES[kind]
        listed = self.control_plane.kubectl_json(
            plural, "-n", self.namespace, "-l", f"sluice.dev/isvc={isvc}"
        )
        return {item["metadata"]["name"]: item for item in listed["items"]}

    def wait(self, condition: Callable[[], bool], what: str, operator: Operator) -> None:
        try:
            processes.wait_for(condition, READY_TIMEOUT, what)
        except TimeoutError as error:
            raise TimeoutError(f"{error}\noperator:\n{operator.log()}") from None


@contextlib.contextmanager
def operator_in(
    cluster: ControlPlane,
    namespace: str,
    kubeconfig_for: Callable[[str, str], Path],
    log: Path,
    resync_seconds: float = 300.0,
) -> Iterator[tuple[Cluster, Operator]]:
    """Chart installed in `namespace`, the operator running as its ServiceAccount.

    On the way out every InferenceService is deleted while the operator still runs (it removes
    its finalizer), then the operator stops and the release is uninstalled.
    """
    release = install_chart(cluster, namespace)
    operator = start_operator(
        kubeconfig_for(namespace, f"{release}-operator"), namespace, log, resync_seconds
    )
    try:
        yield Cluster(cluster, namespace), operator
    finally:
        try:
            cluster.kubectl(
                "delete", PLURAL + "." + GROUP, "--all", "-n", namespace, "--timeout=60s"
            )
        finally:
            operator.stop()
            cluster.helm("uninstall", release, "--namespace", namespace, "--wait=false")


@dataclass(frozen=True)
class Seen:
    """One watch event: the object's kind, the event type and the object as it was then."""

    resource_version: int
    kind: str
    type: str
    obj: dict[str, Any]


class Recorder:
    """Watches Deployments, Services and ConfigMaps of a namespace in the background.

    In this test cluster one etcd orders every write, so resourceVersions sort the events of
    the three streams into the order the API server committed them.
    """

    KINDS = ("Deployment", "Service", "ConfigMap")

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(k,), daemon=True) for k in self.KINDS
        ]

    def __enter__(self) -> Recorder:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def events(self) -> list[Seen]:
        with self._lock:
            return sorted(self._seen, key=lambda s: s.resource_version)

    def _list(self, kind: str, **kwargs: Any) -> Any:
        ns = self._cluster.namespace
        if kind == "Deployment":
            return self._cluster.apps.list_namespaced_deployment(ns, **kwargs)
        if kind == "Service":
            return self._cluster.core.list_namespaced_service(ns, **kwargs)
        return self._cluster.core.list_namespaced_config_map(ns, **kwargs)

    def _run(self, kind: str) -> None:
        version = "0"
        while not self._stop.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    lambda **kw: self._list(kind, **kw),
                    resource_version=version,
                    timeout_seconds=2,
                ):
                    raw = event["raw_object"]
                    version = raw["metadata"]["resourceVersion"]
                    with self._lock:
                        self._seen.append(Seen(int(version), kind, event["type"], raw))
                    if self._stop.is_set():
                        break
            finally:
                stream.stop()


def replay(events: list[Seen]) -> Iterator[tuple[Seen, dict[tuple[str, str], dict[str, Any]]]]:
    """Each event with the state of the namespace just before it (kind, name) -> object."""
    state: dict[tuple[str, str], dict[str, Any]] = {}
    for seen in events:
        yield seen, dict(state)
        key = (seen.kind, seen.obj["metadata"]["name"])
        if seen.type == "DELETED":
            state.pop(key, None)
        else:
            state[key] = seen.obj
