"""Rollouts through Git-style applies: a canary added, raised, promoted (its Deployment serving
as stable without a restart) and removed; a shadow added and removed; old revisions deleted only
once no traffic reaches them; an operator restarted mid-rollout converging.
"""

from __future__ import annotations

from typing import Any

from tests.cluster.operator_harness import (
    Cluster,
    Operator,
    Recorder,
    Seen,
    replay,
)
from tests.cluster.processes import wait_for

ROLE = "sluice.dev/role"
REVISION = "sluice.dev/revision"


def model(version: str) -> dict[str, str]:
    return {"name": "iris", "version": version, "uri": f"mlflow://iris/{version}"}


def manifest(version: str = "1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "serving.sluice.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "iris"},
        "spec": {"model": model(version), **spec},
    }


def _deployments(cluster: Cluster) -> dict[str, dict[str, Any]]:
    return cluster.objects("Deployment", "iris")


def _revision(cluster: Cluster, role: str) -> dict[str, Any]:
    (found,) = [r for r in cluster.isvc("iris")["status"]["revisions"] if r["role"] == role]
    return found


def _reaches(state: dict[tuple[str, str], dict[str, Any]], revision: str) -> bool:
    """Could a request reach `revision` in this state of the namespace?"""
    entry = state.get(("Service", "iris"))
    if entry is not None and entry["spec"]["selector"].get(REVISION) == revision:
        return True
    router = state.get(("ConfigMap", "iris-router"))
    return router is not None and revision in router["data"]["nginx.conf"]


def _assert_deleted_only_without_traffic(events: list[Seen], revisions: set[str]) -> set[str]:
    """Every Deployment deletion among `revisions` happened when no traffic reached it."""
    deleted = set()
    for seen, before in replay(events):
        name = seen.obj["metadata"]["name"]
        if seen.type == "DELETED" and seen.kind == "Deployment" and name in revisions:
            assert not _reaches(before, name), f"{name} deleted while traffic could reach it"
            deleted.add(name)
    return deleted


def test_canary_added_raised_promoted_and_removed(running: tuple[Cluster, Operator]) -> None:
    cluster, operator = running
    cluster.apply(manifest("1"))
    cluster.wait_ready("iris", operator)
    v1 = _revision(cluster, "stable")["name"]

    with Recorder(cluster) as recorder:
        cluster.apply(manifest("1", canary={"model": model("2"), "trafficPercent": 10}))
        cluster.wait_ready("iris", operator)
        v2 = _revision(cluster, "canary")["name"]
        assert _revision(cluster, "canary")["trafficPercent"] == 10
        entry = cluster.objects("Service", "iris")["iris"]
        assert entry["spec"]["selector"]["app.kubernetes.io/component"] == "router"
        config = cluster.objects("ConfigMap", "iris")["iris-router"]
        assert f"90% {v1};" in config["data"]["nginx.conf"]
        router_hash = _deployments(cluster)["iris-router"]["spec"]["template"]["metadata"][
            "annotations"
        ]

        cluster.apply(manifest("1", canary={"model": model("2"), "trafficPercent": 50}))
        cluster.wait_ready("iris", operator)
        assert _revision(cluster, "canary")["trafficPercent"] == 50
        assert (
            f"50% {v1};"
            in cluster.objects("ConfigMap", "iris")["iris-router"]["data"]["nginx.conf"]
        )
        rolled = _deployments(cluster)["iris-router"]["spec"]["template"]["metadata"]["annotations"]
        assert rolled != router_hash, "a new split rolls the router pods"

        canary = _deployments(cluster)[v2]
        uid, template = canary["metadata"]["uid"], canary["spec"]["template"]
        cluster.apply(manifest("2"))
        cluster.wait_ready("iris", operator)
        wait_for(lambda: set(_deployments(cluster)) == {v2}, 60, "old stable and router deleted")

    promoted = _deployments(cluster)[v2]
    assert promoted["metadata"]["uid"] == uid, "the canary's Deployment serves as stable"
    assert promoted["spec"]["template"] == template, "no pod was restarted"
    assert promoted["metadata"]["labels"][ROLE] == "stable"
    assert _revision(cluster, "stable") | {"readyReplicas": 1} == {
        "name": v2, "role": "stable", "version": "2", "readyReplicas": 1, "replicas": 1,
        "trafficPercent": 100, "mirrorPercent": 0,
    }  # fmt: skip
    assert cluster.objects("Service", "iris")["iris"]["spec"]["selector"][REVISION] == v2
    assert not cluster.objects("ConfigMap", "iris")
    assert _assert_deleted_only_without_traffic(recorder.events(), {v1}) == {v1}
    reasons = {e.reason for e in cluster.core.list_namespaced_event(cluster.namespace).items}
    assert {"RevisionCreated", "Promoted", "RevisionDeleted", "Ready"} <= reasons


def test_canary_removed_returns_to_direct_serving(running: tuple[Cluster, Operator]) -> None:
    cluster, operator = running
    cluster.apply(manifest("1", canary={"model": model("2"), "trafficPercent": 20}))
    cluster.wait_ready("iris", operator)
    v2 = _revision(cluster, "canary")["name"]
    with Recorder(cluster) as recorder:
        cluster.apply(manifest("1"))
        cluster.wait_ready("iris", operator)
        wait_for(lambda: v2 not in _deployments(cluster), 60, "canary deleted")
    v1 = _revision(cluster, "stable")["name"]
    assert set(_deployments(cluster)) == {v1}
    assert cluster.objects("Service", "iris")["iris"]["spec"]["selector"][REVISION] == v1
    assert _assert_deleted_only_without_traffic(recorder.events(), {v2}) == {v2}


def test_shadow_added_and_removed(running: tuple[Cluster, Operator]) -> None:
    cluster, operator = running
    cluster.apply(manifest("1"))
    cluster.wait_ready("iris", operator)
    v1 = _revision(cluster, "stable")["name"]

    cluster.apply(manifest("1", shadow={"model": model("3"), "mirrorPercent": 25}))
    cluster.wait_ready("iris", operator)
    shadow = _revision(cluster, "shadow")
    assert (shadow["mirrorPercent"], shadow["trafficPercent"]) == (25, 0)
    env = {
        e["name"]: e.get("value")
        for e in _deployments(cluster)[v1]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["SLUICE_SHADOW_URL"].startswith(f"http://{shadow['name']}.")
    assert env["SLUICE_SHADOW_PERCENT"] == "25"
    assert cluster.objects("Service", "iris")["iris"]["spec"]["selector"][REVISION] == v1

    cluster.apply(manifest("1"))
    cluster.wait_ready("iris", operator)
    wait_for(lambda: set(_deployments(cluster)) == {v1}, 60, "shadow deleted")
    container = _deployments(cluster)[v1]["spec"]["template"]["spec"]["containers"][0]
    assert "SLUICE_SHADOW_URL" not in {e["name"] for e in container["env"]}


def test_a_new_stable_takes_traffic_only_once_available(running: tuple[Cluster, Operator]) -> None:
    """The old stable keeps serving while the new one's pods cannot be scheduled."""
    cluster, operator = running
    cluster.apply(manifest("1"))
    cluster.wait_ready("iris", operator)
    v1 = _revision(cluster, "stable")["name"]
    too_big = {"resources": {"requests": {"cpu": "64"}}}
    cluster.apply(manifest("2", runtime=too_big))
    cluster.wait(
        lambda: (cluster.condition("iris", "Ready") or {}).get("reason") == "Unschedulable",
        "Ready=False for Unschedulable",
        operator,
    )
    assert cluster.objects("Service", "iris")["iris"]["spec"]["selector"][REVISION] == v1
    assert _revision(cluster, "draining")["trafficPercent"] == 100

    cluster.apply(manifest("2"))
    cluster.wait_ready("iris", operator)
    wait_for(lambda: len(_deployments(cluster)) == 1, 60, "old revisions deleted")
    assert _revision(cluster, "stable")["version"] == "2"


def test_restarted_mid_rollout_the_operator_converges(running: tuple[Cluster, Operator]) -> None:
    cluster, operator = running
    cluster.apply(manifest("1"))
    cluster.wait_ready("iris", operator)
    operator.kill()
    cluster.apply(manifest("1", canary={"model": model("2"), "trafficPercent": 30}))
    operator.start()
    wait_for(lambda: "iris-router" in _deployments(cluster), 60, "router created")
    operator.kill()  # again, mid-rollout: the router exists, traffic may not have moved yet
    operator.start()
    cluster.wait_ready("iris", operator)
    assert _revision(cluster, "canary")["trafficPercent"] == 30
    assert len([d for d in _deployments(cluster) if d != "iris-router"]) == 2
    entry = cluster.objects("Service", "iris")["iris"]
    assert entry["spec"]["selector"]["app.kubernetes.io/component"] == "router"
    assert cluster.isvc("iris")["status"]["observedGeneration"] == 2
