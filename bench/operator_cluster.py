"""What both operator benchmarks stand on: the InferenceService mix, and a fresh control plane.

`bench.operator_scale` runs the operator on it; `bench.operator_floor` applies the objects the
operator would make with no operator at all. Both must see the same InferenceServices and the
same cluster, or the floor would not be a floor.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubernetes import watch
from prometheus_client.parser import text_string_to_metric_families

from bench.operator_scale_report import ServiceCosts
from tests.cluster import controlplane
from tests.cluster.components import fake_node
from tests.cluster.controlplane import ControlPlane
from tests.cluster.operator_harness import GROUP, VERSION
from tests.cluster.processes import wait_for

NAMESPACE = "scale"
BENCH_NODES = 8
LABEL_ISVC = "sluice.dev/isvc"
RUNTIME_IMAGE = "registry.local/sluice-runtime:test"  # never pulled: kwok runs no containers


def mix(index: int) -> str:
    """70% plain, 15% canary, 15% shadow, interleaved so every slice of the run is mixed."""
    slot = index % 20
    return "plain" if slot < 14 else "canary" if slot < 17 else "shadow"


def manifest(name: str, kind: str) -> dict[str, Any]:
    """A small InferenceService of `kind`; mlflow URIs are pinned by version (no digest)."""

    def model(version: str) -> dict[str, str]:
        return {"name": name, "version": version, "uri": f"mlflow://{name}/{version}"}

    spec: dict[str, Any] = {
        "model": model("1"),
        "runtime": {"resources": {"requests": {"cpu": "10m", "memory": "32Mi"}}},
    }
    if kind == "canary":
        spec["canary"] = {"model": model("2"), "trafficPercent": 10}
    elif kind == "shadow":
        spec["shadow"] = {"model": model("3"), "mirrorPercent": 100}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def service_costs(cluster: ControlPlane) -> ServiceCosts:
    """What creating Services has cost the API server so far: every create allocates a
    ClusterIP, and the allocator does one at a time (a lock around an IPAddress create)."""
    apply = {"verb": "APPLY", "resource": "services"}
    allocation = "kube_apiserver_clusterip_allocator_allocation_duration_seconds"
    return ServiceCosts(
        creates=sum_samples(cluster, "apiserver_request_duration_seconds_count", apply),
        create_seconds=sum_samples(cluster, "apiserver_request_duration_seconds_sum", apply),
        allocations=sum_samples(cluster, f"{allocation}_count", {}),
        allocation_seconds=sum_samples(cluster, f"{allocation}_sum", {}),
    )


def sum_samples(cluster: ControlPlane, name: str, labels: dict[str, str]) -> float:
    """The sum of the API server's samples named `name` whose labels include `labels`."""
    text = cluster.kubectl("get", "--raw", "/metrics").stdout
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


def bench_nodes() -> list[dict[str, Any]]:
    """kwok nodes roomy enough for thousands of small pods (the test nodes hold 110 each)."""
    nodes = []
    for index in range(BENCH_NODES):
        node = fake_node(f"kwok-bench-{index}")
        capacity = {"cpu": "1000", "memory": "4Ti", "pods": "1000"}
        node["status"] = {"capacity": capacity, "allocatable": capacity}
        nodes.append(node)
    return nodes


def _nodes_ready(cluster: ControlPlane, names: set[str]) -> bool:
    nodes = cluster.kubectl_json("nodes")["items"]
    ready = {
        n["metadata"]["name"]
        for n in nodes
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in n["status"].get("conditions", [])
        )
    }
    return names <= ready


@contextmanager
def fresh_cluster(workdir: Path) -> Iterator[ControlPlane]:
    """A new control plane with roomy kwok nodes Ready and the bench namespace, torn down after."""
    state = workdir / "control-plane"
    cluster = controlplane.start(state, controlplane.find_bin_dir())
    try:
        nodes = bench_nodes()
        cluster.create(*nodes)
        names = {n["metadata"]["name"] for n in nodes}
        wait_for(lambda: _nodes_ready(cluster, names), 120, "bench kwok nodes Ready")
        cluster.create_namespace(NAMESPACE)
        yield cluster
    finally:
        controlplane.stop(state)


def follow(
    call: Callable[..., Any],
    args: tuple[str, ...],
    kwargs: dict[str, str],
    stop: threading.Event,
    on_object: Callable[[str, dict[str, Any]], None],
) -> None:
    """Watch a list call until `stop` is set, passing each event's type and object along;
    short server-side timeouts so a set `stop` is seen within seconds."""
    version = ""
    while not stop.is_set():
        stream = watch.Watch()
        for event in stream.stream(
            call, *args, timeout_seconds=2, resource_version=version, **kwargs
        ):
            obj = event["raw_object"]
            version = obj["metadata"]["resourceVersion"]
            on_object(event["type"], obj)
            if stop.is_set():
                stream.stop()
