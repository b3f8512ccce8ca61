"""Failures the kubelet reports, shown in status: a model whose digest does not match (the init
container fails and restarts), and a runtime that crash-loops. Fixing the spec recovers.

The failing pods are pinned to a Node no kwok manages, so nothing but this test writes their
status: the test plays that node's kubelet and records, through the API server, exactly what a
kubelet records for such a pod. Everything else runs on kwok's nodes as usual.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.controlplane import ControlPlane
from tests.cluster.operator_harness import Cluster, Operator
from tests.cluster.processes import wait_for

GOOD = "sha256:" + "1" * 64
BAD = "sha256:" + "2" * 64
MISMATCH = f"fetch: digest mismatch for https://models.example/iris/2: want {BAD}, got {GOOD}"


@pytest.fixture
def manual_node(control_plane: ControlPlane) -> Iterator[str]:
    """A Node without a kubelet (kwok ignores it): its pods' status is ours to write."""
    name = f"manual-{secrets.token_hex(3)}"
    capacity = {"cpu": "16", "memory": "64Gi", "pods": "110"}
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"sluice-test/kubelet": name}},
        # Tainted from birth, so only the pods meant for it ever land there.
        "spec": {"taints": [{"key": "sluice-test/kubelet", "value": name, "effect": "NoSchedule"}]},
        "status": {"capacity": capacity, "allocatable": capacity},
    }
    control_plane.kubectl("create", "-f", "-", input=json.dumps(node))
    yield name
    control_plane.kubectl("delete", "node", name, "--wait=false")


def _on(node: str) -> dict[str, Any]:
    """spec.pod settings that land the pods on the manual node (not-ready: it has no kubelet)."""
    return {
        "nodeSelector": {"sluice-test/kubelet": node},
        "tolerations": [
            {"key": "sluice-test/kubelet", "operator": "Equal", "value": node},
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists"},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists"},
        ],
    }


def manifest(version: str, **spec: Any) -> dict[str, Any]:
    uri = f"https://models.example/iris/{version}"
    return {
        "apiVersion": "serving.sluice.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "iris"},
        "spec": {"model": {"name": "iris", "version": version, "uri": uri, "digest": GOOD}, **spec},
    }


def _pods_on(cluster: Cluster, node: str) -> list[dict[str, Any]]:
    return [p for p in cluster.objects("Pod", "iris").values() if p["spec"].get("nodeName") == node]


def _report(cluster: Cluster, pod: dict[str, Any], status: dict[str, Any]) -> None:
    """Write a pod's status as its kubelet would (the status subresource, as admin)."""
    cluster.core.patch_namespaced_pod_status(
        pod["metadata"]["name"], cluster.namespace, {"status": status}
    )


def _init_failed(message: str) -> dict[str, Any]:
    return {
        "phase": "Pending",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "False", "reason": "ContainersNotInitialized"},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
        ],
        "initContainerStatuses": [
            {
                "name": "fetch",
                "image": "registry.local/sluice-runtime:test",
                "imageID": "",
                "ready": False,
                "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": message}},
            }
        ],
    }


def _runtime_crashing(message: str) -> dict[str, Any]:
    return {
        "phase": "Running",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
        ],
        "initContainerStatuses": [
            {
                "name": "fetch",
                "image": "registry.local/sluice-runtime:test",
                "imageID": "",
                "ready": True,
                "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
            }
        ],
        "containerStatuses": [
            {
                "name": "runtime",
                "image": "registry.local/sluice-runtime:test",
                "imageID": "",
                "ready": False,
                "restartCount": 5,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 1m20s"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": message}},
            }
        ],
    }


def _ready_reason(cluster: Cluster) -> tuple[str, str, str]:
    ready = cluster.condition("iris", "Ready") or {"status": "", "reason": "", "message": ""}
    return ready["status"], ready["reason"], ready["message"]


def test_a_digest_mismatch_is_reported_and_the_old_version_keeps_serving(
    running: tuple[Cluster, Operator], manual_node: str
) -> None:
    cluster, operator = running
    cluster.apply(manifest("1"))
    cluster.wait_ready("iris", operator)
    (v1,) = cluster.objects("Deployment", "iris")

    broken = manifest("2", pod=_on(manual_node))
    broken["spec"]["model"]["digest"] = BAD
    cluster.apply(broken)
    cluster.wait(lambda: len(_pods_on(cluster, manual_node)) == 1, "v2 pod scheduled", operator)
    (pod,) = _pods_on(cluster, manual_node)
    _report(cluster, pod, _init_failed(MISMATCH))

    cluster.wait(
        lambda: _ready_reason(cluster)[1] == "ModelFetchFailed",
        "Ready=False ModelFetchFailed",
        operator,
    )
    status, _, message = _ready_reason(cluster)
    assert status == "False"
    assert (
        "(stable, version 2): 1 pod(s) ModelFetchFailed: exit code 1: fetch: digest mismatch"
        in message
    )
    assert cluster.condition("iris", "Degraded")["status"] == "True"  # type: ignore[index]
    entry = cluster.objects("Service", "iris")["iris"]
    assert entry["spec"]["selector"]["sluice.dev/revision"] == v1, "v1 keeps every request"
    warnings = [
        e for e in cluster.core.list_namespaced_event(cluster.namespace).items
        if e.type == "Warning" and e.reason == "ModelFetchFailed"
    ]  # fmt: skip
    assert warnings, "a Warning Event tells kubectl describe readers"

    cluster.apply(manifest("2"))  # the right digest, on ordinary nodes
    cluster.wait_ready("iris", operator)
    wait_for(
        lambda: len(cluster.objects("Deployment", "iris")) == 1, 60, "failed and old revisions gone"
    )
    (revision,) = cluster.isvc("iris")["status"]["revisions"]
    assert (revision["version"], revision["digest"], revision["trafficPercent"]) == ("2", GOOD, 100)
    assert cluster.condition("iris", "Degraded")["status"] == "False"  # type: ignore[index]
    _release(cluster, manual_node)


def test_crash_looping_pods_are_counted_and_a_fix_recovers(
    running: tuple[Cluster, Operator], manual_node: str
) -> None:
    cluster, operator = running
    crashing = manifest("1", pod=_on(manual_node), scaling={"minReplicas": 2})
    cluster.apply(crashing)
    cluster.wait(lambda: len(_pods_on(cluster, manual_node)) == 2, "two pods scheduled", operator)
    first, second = _pods_on(cluster, manual_node)
    _report(cluster, first, _runtime_crashing("onnxruntime: model input 'x' has no shape"))
    cluster.wait(
        lambda: "1 pod(s) CrashLoopBackOff" in _ready_reason(cluster)[2],
        "one pod counted",
        operator,
    )
    _report(cluster, second, _runtime_crashing("onnxruntime: model input 'x' has no shape"))
    cluster.wait(
        lambda: "2 pod(s) CrashLoopBackOff" in _ready_reason(cluster)[2],
        "both pods counted",
        operator,
    )
    status, reason, message = _ready_reason(cluster)
    assert (status, reason) == ("False", "CrashLoopBackOff")
    assert "exit code 1: onnxruntime: model input 'x' has no shape" in message
    assert cluster.condition("iris", "Progressing")["reason"] == "Stalled"  # type: ignore[index]

    cluster.apply(manifest("1", scaling={"minReplicas": 2}))  # same model, off the broken node
    cluster.wait_ready("iris", operator)
    assert cluster.condition("iris", "Degraded")["status"] == "False"  # type: ignore[index]
    _release(cluster, manual_node)


def _release(cluster: Cluster, node: str) -> None:
    """As the node's kubelet: confirm that the pods the controllers deleted are gone."""
    for pod in _pods_on(cluster, node):
        cluster.core.delete_namespaced_pod(
            pod["metadata"]["name"], cluster.namespace, grace_period_seconds=0
        )
