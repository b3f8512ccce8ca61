"""`python -m bench.operator_scale`: the operator holding 1,000 InferenceServices.

On a fresh real control plane (etcd, kube-apiserver, controller manager, scheduler, kwok nodes
that make pods ready at once), with the chart installed and the operator running as its
ServiceAccount exactly as in tests/cluster: create N InferenceServices (plain, canary, shadow
mixed), time until all are Ready after the last create, sample the operator's RSS and read its
peak (VmHWM), count the API requests it made (an API Priority and Fairness FlowSchema matching
only its ServiceAccount, read from the API server's own metrics), then check that a resync of
everything writes nothing, and time apply -> children -> Ready for single InferenceServices.
Writes bench/results/operator_scale.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from bench import operator_floor
from bench.operator_cluster import (
    LABEL_ISVC,
    NAMESPACE,
    RUNTIME_IMAGE,
    follow,
    fresh_cluster,
    manifest,
    mix,
    service_costs,
    sum_samples,
)
from bench.operator_scale_report import Latency, ScaleRun, write_page
from bench.peers_servers import CLOCK_TICKS, parse_stat
from tests.cluster.controlplane import REPO, ControlPlane
from tests.cluster.operator_harness import (
    GROUP,
    PLURAL,
    VERSION,
    Operator,
    admin_api,
    install_chart,
)
from tests.cluster.processes import wait_for
from tests.runtime.harness import free_port

FLOW_SCHEMA = "sluice-bench-operator"
PRIORITY_LEVEL = "workload-low"  # where ServiceAccounts land by default ("service-accounts")
RESYNC_SECONDS = 30.0
READY_TIMEOUT = 300.0


def is_ready(body: dict[str, Any]) -> bool:
    """Ready=True for the generation the operator last observed being the current one."""
    status = body.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", [])
    )
    return ready and status.get("observedGeneration") == body["metadata"].get("generation")


def flow_schema(service_account: str) -> dict[str, Any]:
    """Routes exactly the operator's requests through a FlowSchema of their own, so the API
    server counts them (apiserver_flowcontrol_dispatched_requests_total{flow_schema=...})."""
    subject = {"kind": "ServiceAccount",
               "serviceAccount": {"name": service_account, "namespace": NAMESPACE}}  # fmt: skip
    everything = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
                  "namespaces": ["*"], "clusterScope": True}  # fmt: skip
    return {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": FLOW_SCHEMA},
        "spec": {
            "matchingPrecedence": 500,
            "priorityLevelConfiguration": {"name": PRIORITY_LEVEL},
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [
                {
                    "subjects": [subject],
                    "resourceRules": [everything],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                }
            ],
        },
    }


def apiserver_requests(cluster: ControlPlane) -> float:
    """Requests the API server dispatched for the operator's FlowSchema so far."""
    return sum_samples(
        cluster,
        "apiserver_flowcontrol_dispatched_requests_total",
        {"flow_schema": FLOW_SCHEMA},
    )


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB: its resident memory now and at its peak."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


class Watcher:
    """When each child (Deployment, Service) of each InferenceService first appeared, and when
    the InferenceService itself first read Ready: three watches, timestamps on arrival."""

    READY = "Ready"

    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self._seen: dict[str, dict[str, float]] = {}
        self._changed = threading.Condition()
        self._stop = threading.Event()

    @contextmanager
    def running(self) -> Iterator[Watcher]:
        apps, core = client.AppsV1Api(self._api), client.CoreV1Api(self._api)
        custom = client.CustomObjectsApi(self._api)
        streams: list[tuple[Callable[..., Any], tuple[str, ...], dict[str, str]]] = [
            (apps.list_namespaced_deployment, (NAMESPACE,), {"label_selector": LABEL_ISVC}),
            (core.list_namespaced_service, (NAMESPACE,), {"label_selector": LABEL_ISVC}),
            (custom.list_namespaced_custom_object, (GROUP, VERSION, NAMESPACE, PLURAL), {}),
        ]
        threads = [
            threading.Thread(target=follow, args=(*s, self._stop, self._on_object), daemon=True)
            for s in streams
        ]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(timeout=10)

    def _on_object(self, event: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if obj["kind"] == "InferenceService":
            owner, what = meta["name"], self.READY if is_ready(obj) else ""
        else:
            owner, what = meta["labels"][LABEL_ISVC], f"{obj['kind']}/{meta['name']}"
        if what:
            with self._changed:
                self._seen.setdefault(owner, {}).setdefault(what, time.monotonic())
                self._changed.notify_all()

    def ready_count(self, prefix: str) -> int:
        """InferenceServices named `prefix...` that have been seen Ready."""
        with self._changed:
            return sum(
                self.READY in seen for name, seen in self._seen.items() if name.startswith(prefix)
            )

    def wait(
        self, isvc: str, done: Callable[[dict[str, float]], bool], timeout: float
    ) -> dict[str, float]:
        """First-seen times of what `isvc` has, once `done` holds for them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not done(self._seen.get(isvc, {})):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{isvc}: not done after {timeout:.0f}s: {self._seen.get(isvc)}"
                    )
                self._changed.wait(left)
            return dict(self._seen[isvc])


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process so far."""
    return parse_stat(Path(f"/proc/{pid}/stat").read_text())[2] / CLOCK_TICKS


@dataclass
class Rig:
    """The control plane, an admin client, and the operator under test."""

    cluster: ControlPlane
    api: client.ApiClient
    operator: Operator

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @property
    def pid(self) -> int:
        assert self.operator.process is not None
        return self.operator.process.pid

    def requests(self) -> float:
        return apiserver_requests(self.cluster)

    def create(self, body: dict[str, Any]) -> None:
        self.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)


def _start_operator(kubeconfig: Path, log: Path, resync_seconds: float) -> Operator:
    """`sluice-operator` as tests/cluster starts it, but logging at INFO as the chart runs it
    (DEBUG lines for 1,000 objects would cost the operator more than its work)."""
    metrics_port, health_port = free_port(), free_port()
    argv = [
        "env", f"KUBECONFIG={kubeconfig}", str(Path(sys.executable).with_name("sluice-operator")),
        f"--namespace={NAMESPACE}", "--standalone", f"--metrics-port={metrics_port}",
        f"--health-port={health_port}", f"--resync-seconds={resync_seconds}",
        f"--runtime-image={RUNTIME_IMAGE}", "--log-level=INFO",
    ]  # fmt: skip
    return Operator(argv, log, metrics_port, health_port).start()


@contextmanager
def rig(workdir: Path, resync_seconds: float) -> Iterator[Rig]:
    """A fresh control plane, the chart, and the operator, torn down after."""
    with fresh_cluster(workdir) as cluster:
        release = install_chart(cluster, NAMESPACE)
        account = f"{release}-operator"
        cluster.kubectl("apply", "-f", "-", input=json.dumps(flow_schema(account)))
        kubeconfig = cluster.service_account_kubeconfig(
            NAMESPACE, account, workdir / "operator.kubeconfig"
        )
        operator = _start_operator(kubeconfig, workdir / "operator.log", resync_seconds)
        try:
            yield Rig(cluster, admin_api(cluster), operator)
        finally:
            operator.stop()


def bulk(rig: Rig, watcher: Watcher, count: int, timeout: float, run: ScaleRun) -> None:
    """Create `count` InferenceServices at once and time them all to Ready. When `timeout`
    passes first, how many were Ready then is recorded, and the wait goes on (up to four
    times as long) so that the resync phase starts from a settled state."""
    bodies = [manifest(f"bench-{i:04d}", mix(i)) for i in range(count)]
    requests0, writes0, cpu0 = rig.requests(), rig.operator.writes(), cpu_seconds(rig.pid)
    passes0, services0 = rig.operator.reconciliations(), service_costs(rig.cluster)
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(rig.create, bodies))
    applied = time.monotonic()
    run.create_seconds = applied - began
    deadline, cap = applied + timeout, applied + 4 * timeout
    while True:
        ready = watcher.ready_count("bench-")
        rss, _ = rss_mb(rig.pid)
        now = time.monotonic()
        run.progress.append((now - applied, ready, rss))
        print(
            f"  +{now - applied:6.1f}s  ready {ready:5d}/{count}  operator RSS {rss:6.1f} MiB",
            file=sys.stderr,
        )
        if not run.ready_seconds and (ready == count or now > deadline):
            run.ready_seconds, run.ready_count = now - applied, ready
            run.bulk_requests = rig.requests() - requests0
            run.bulk_writes = rig.operator.writes() - writes0
            run.bulk_cpu_seconds = cpu_seconds(rig.pid) - cpu0
            run.bulk_passes = rig.operator.reconciliations() - passes0
            run.services = service_costs(rig.cluster) - services0
        if ready == count or now > cap:
            break
        time.sleep(1.0)
    run.all_ready_seconds, run.final_ready = now - applied, ready


def quiet(rig: Rig, seconds: float, timeout: float) -> bool:
    """Until the operator has written nothing for `seconds` (late pod events settle); False
    when it still wrote after `timeout` (some InferenceServices were still converging)."""
    last, since = rig.operator.writes(), time.monotonic()
    deadline = since + timeout
    while time.monotonic() - since < seconds:
        if time.monotonic() > deadline:
            return False
        time.sleep(1.0)
        now = rig.operator.writes()
        if now != last:
            last, since = now, time.monotonic()
    return True


def resync(rig: Rig, count: int, resync_seconds: float, run: ScaleRun) -> None:
    """Wait until every InferenceService was reconciled again; nothing may have been written."""
    run.settled = quiet(rig, seconds=5.0, timeout=180.0)
    writes0, passes0, requests0 = (
        rig.operator.writes(),
        rig.operator.reconciliations(),
        rig.requests(),
    )
    written0 = _written(rig)
    began = time.monotonic()
    wait_for(
        lambda: rig.operator.reconciliations() - passes0 >= count,
        3 * resync_seconds + 60,
        f"{count} reconciliations (a full resync)",
    )
    run.resync_seconds = time.monotonic() - began
    run.resync_passes = rig.operator.reconciliations() - passes0
    run.resync_writes = rig.operator.writes() - writes0
    run.resync_requests = rig.requests() - requests0
    run.written = _written(rig)
    run.resync_written = {
        k: v - written0.get(k, 0.0) for k, v in run.written.items() if v != written0.get(k, 0.0)
    }


def _written(rig: Rig) -> dict[str, float]:
    """The operator's writes so far by kind and action."""
    return {
        k: v
        for k, v in rig.operator.metrics().items()
        if k.startswith("sluice_operator_objects_written_total")
    }


def _ready(seen: dict[str, float]) -> bool:
    return Watcher.READY in seen


def _children_at_least(count: int) -> Callable[[dict[str, float]], bool]:
    return lambda seen: len(seen) - (Watcher.READY in seen) >= count


def latency(rig: Rig, watcher: Watcher, samples: int, run: ScaleRun) -> None:
    """apply -> all children seen -> Ready for single plain InferenceServices, one at a time."""
    children, readies = [], []
    expected = 0
    for index in range(samples):
        name = f"single-{index:03d}"
        began = time.monotonic()
        rig.create(manifest(name, "plain"))
        seen = watcher.wait(name, _ready, 120)
        if index == 0:
            expected = len(seen) - 1  # what a plain InferenceService has once Ready
        seen = watcher.wait(name, _children_at_least(expected), 120)
        last_child = max(t for what, t in seen.items() if what != Watcher.READY)
        children.append(last_child - began)
        readies.append(seen[Watcher.READY] - began)
    run.children_per_isvc = expected
    run.children_latency = Latency.of(children)
    run.ready_latency = Latency.of(readies)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.operator_scale", description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=30, help="single-InferenceService runs")
    parser.add_argument("--resync-seconds", type=float, default=RESYNC_SECONDS)
    parser.add_argument("--ready-timeout", type=float, default=READY_TIMEOUT)
    parser.add_argument(
        "--no-floor", action="store_true", help="skip the control plane's own run first"
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "results" / "operator_scale.md"
    )
    args = parser.parse_args(argv)
    run = ScaleRun(count=args.count, resync_period=args.resync_seconds)
    workdir = Path(tempfile.mkdtemp(prefix="sluice-scale-"))
    try:
        if not args.no_floor:
            print(f"floor: {args.count} InferenceServices' objects, no operator", file=sys.stderr)
            run.floor = operator_floor.measure(workdir / "floor", args.count)
        with (
            rig(workdir / "operator", args.resync_seconds) as bench,
            Watcher(bench.api).running() as seen,
        ):
            run.idle_rss_mb = rss_mb(bench.pid)[0]
            print(f"creating {args.count} InferenceServices", file=sys.stderr)
            bulk(bench, seen, args.count, args.ready_timeout, run)
            print("waiting for a full resync", file=sys.stderr)
            resync(bench, args.count, args.resync_seconds, run)
            print(f"timing {args.samples} single InferenceServices", file=sys.stderr)
            latency(bench, seen, args.samples, run)
            run.peak_rss_mb = rss_mb(bench.pid)[1]
            run.errors = bench.operator.total("sluice_operator_reconcile_errors_total")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    write_page(args.out, run)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
