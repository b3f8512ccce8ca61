"""The operator on a real API server under the chart's RBAC: every example becomes Ready with
the expected objects and pods on kwok nodes, a resync with nothing changed writes nothing, and
deleting an InferenceService garbage-collects all it made.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.cluster.operator_harness import CHILD_KINDS, Cluster, Operator
from tests.cluster.processes import wait_for
from tests.data.isvc_cases import EXAMPLES, load

EXAMPLE = {path.stem: load(path) for path in EXAMPLES}


@pytest.fixture
def resync_seconds() -> float:
    """Resync every 2 s, so the no-op resync test sees several passes quickly."""
    return 2.0


def _env(deployment: dict[str, Any]) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def _by_role(cluster: Cluster, isvc: str) -> dict[str, dict[str, Any]]:
    deployments = cluster.objects("Deployment", isvc).values()
    return {
        d["metadata"]["labels"]["sluice.dev/role"]: d
        for d in deployments
        if "sluice.dev/role" in d["metadata"]["labels"]
    }


def _owned_by(obj: dict[str, Any], isvc: dict[str, Any]) -> bool:
    return any(
        o["uid"] == isvc["metadata"]["uid"] and o.get("controller")
        for o in obj["metadata"].get("ownerReferences", [])
    )


def _check_common(cluster: Cluster, name: str) -> dict[str, Any]:
    """Owner references, pod security, probes and kwok scheduling, for any example."""
    isvc = cluster.isvc(name)
    for kind in CHILD_KINDS:
        for obj in cluster.objects(kind, name).values():
            assert _owned_by(obj, isvc), (
                f"{kind} {obj['metadata']['name']} lacks the owner reference"
            )
    pods = cluster.objects("Pod", name)
    assert pods, "no pods"
    for pod in pods.values():
        assert pod["spec"]["nodeName"].startswith("kwok-"), pod["spec"].get("nodeName")
        assert pod["status"]["phase"] == "Running"
        if pod["metadata"]["labels"].get("app.kubernetes.io/component") != "predictor":
            continue
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        (runtime,) = spec["containers"]
        assert runtime["securityContext"]["readOnlyRootFilesystem"] is True
        assert runtime["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert runtime["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
        assert [c["name"] for c in spec["initContainers"]] == ["fetch"]
    return isvc


def test_every_example_becomes_ready_with_the_objects_it_needs(
    running: tuple[Cluster, Operator],
) -> None:
    cluster, operator = running
    timings = {}
    for example in EXAMPLE.values():
        cluster.apply(example)
    for name in ("iris", "fraud", "resnet", "churn", "ranker"):
        began = time.monotonic()
        cluster.wait_ready(name, operator)
        timings[name] = time.monotonic() - began
    print(f"\napply -> Ready (s, waited in turn after applying all five): {timings}")

    iris = _check_common(cluster, "iris")
    (stable,) = iris["status"]["revisions"]
    assert (stable["role"], stable["version"], stable["trafficPercent"]) == ("stable", "1", 100)
    entry = cluster.objects("Service", "iris")["iris"]
    assert entry["spec"]["selector"] == {
        "sluice.dev/isvc": "iris",
        "sluice.dev/revision": stable["name"],
    }
    assert not cluster.objects("ConfigMap", "iris")

    fraud = _check_common(cluster, "fraud")
    shares = {r["role"]: (r["version"], r["trafficPercent"]) for r in fraud["status"]["revisions"]}
    assert shares == {"stable": ("7", 90), "canary": ("8", 10)}
    assert (fraud["status"]["stable"], fraud["status"]["canary"]) == ("7 (90%)", "8 (10%)")
    assert (
        cluster.objects("Service", "fraud")["fraud"]["spec"]["selector"][
            "app.kubernetes.io/component"
        ]
        == "router"
    )
    config = cluster.objects("ConfigMap", "fraud")["fraud-router"]["data"]["nginx.conf"]
    assert "90% " in config
    assert "split_clients" in config
    assert len(cluster.objects("HorizontalPodAutoscaler", "fraud")) == 2
    assert len(cluster.objects("PodDisruptionBudget", "fraud")) == 3  # two revisions, router
    for deployment in _by_role(cluster, "fraud").values():
        assert deployment["status"]["readyReplicas"] >= 2  # the HPA raised it to minReplicas

    resnet = _check_common(cluster, "resnet")
    gpu_pods = cluster.objects("Pod", "resnet").values()
    assert all(p["spec"]["nodeName"].startswith("kwok-gpu-") for p in gpu_pods)
    runtime = _by_role(cluster, "resnet")["stable"]["spec"]["template"]["spec"]
    assert runtime["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert runtime["nodeSelector"]["nvidia.com/gpu.present"] == "true"
    assert resnet["status"]["revisions"][0]["digest"].startswith("sha256:")

    churn = _check_common(cluster, "churn")
    roles = _by_role(cluster, "churn")
    shadow_name = roles["shadow"]["metadata"]["name"]
    env = _env(roles["stable"])
    assert (
        env["SLUICE_SHADOW_URL"]
        == f"http://{shadow_name}.{cluster.namespace}.svc.cluster.local:8080"
    )
    assert env["SLUICE_SHADOW_PERCENT"] == "100"
    assert "SLUICE_SHADOW_URL" not in _env(roles["shadow"])
    assert churn["status"]["shadow"] == "4 (100%)"
    assert not cluster.objects("ConfigMap", "churn"), "a shadow alone adds no router"

    _check_common(cluster, "ranker")
    ranker_config = cluster.objects("ConfigMap", "ranker")["ranker-router"]["data"]["nginx.conf"]
    assert "map $http_x_user_id $sluice_split_key" in ranker_config


def test_a_resync_with_nothing_changed_writes_nothing(running: tuple[Cluster, Operator]) -> None:
    cluster, operator = running
    cluster.apply(EXAMPLE["canary"])
    cluster.wait_ready("fraud", operator)

    def versions() -> dict[str, str]:
        """What a write would move: the InferenceService's resourceVersion (status included),
        each child's generation, or its resourceVersion where it has no generation."""
        found = {"isvc": cluster.isvc("fraud")["metadata"]["resourceVersion"]}
        for kind in CHILD_KINDS:
            for name, obj in cluster.objects(kind, "fraud").items():
                meta = obj["metadata"]
                found[f"{kind}/{name}"] = str(meta.get("generation", meta["resourceVersion"]))
        return found

    wait_for(lambda: cluster.is_ready("fraud") and _quiet(operator), 60, "operator settled")
    writes, passes, before = operator.writes(), operator.reconciliations(), versions()
    wait_for(lambda: operator.reconciliations() >= passes + 3, 60, "three more resyncs")
    assert operator.writes() == writes
    assert versions() == before


def _quiet(operator: Operator) -> bool:
    """No write during one resync period (2 s): the rollout's last status write is done."""
    writes = operator.writes()
    passes = operator.reconciliations()
    wait_for(lambda: operator.reconciliations() > passes, 30, "a resync")
    return operator.writes() == writes


def test_deleting_the_inferenceservice_collects_everything(
    running: tuple[Cluster, Operator],
) -> None:
    cluster, operator = running
    cluster.apply(EXAMPLE["sticky-ab"])
    cluster.wait_ready("ranker", operator)
    kinds = ("Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "Pod")
    assert all(cluster.objects(kind, "ranker") for kind in kinds)
    cluster.control_plane.kubectl(
        "delete",
        "inferenceservice.serving.sluice.dev",
        "ranker",
        "-n",
        cluster.namespace,
        "--wait=false",
    )
    wait_for(
        lambda: not any(cluster.objects(kind, "ranker") for kind in kinds),
        120,
        "every child of ranker garbage-collected",
    )
    gone = cluster.control_plane.kubectl(
        "get",
        "inferenceservice.serving.sluice.dev",
        "ranker",
        "-n",
        cluster.namespace,
        "--ignore-not-found",
        "-o",
        "name",
    )
    assert gone.stdout == ""
