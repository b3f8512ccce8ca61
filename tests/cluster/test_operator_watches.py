"""The operator's watches on a real API server: children deleted or changed by someone else
are put back at once. The resync period is the default (300 s), far past the wait, so only the
watches can have told the operator.
"""

from __future__ import annotations

from typing import Any

from tests.cluster.operator_harness import Cluster, Operator
from tests.data.isvc_cases import EXAMPLES, load

BASIC = next(load(path) for path in EXAMPLES if path.stem == "basic")


def _by_role(cluster: Cluster, isvc: str) -> dict[str, dict[str, Any]]:
    deployments = cluster.objects("Deployment", isvc).values()
    return {d["metadata"]["labels"].get("sluice.dev/role", ""): d for d in deployments}


def test_children_deleted_or_changed_by_others_are_put_back(
    running: tuple[Cluster, Operator],
) -> None:
    cluster, operator = running
    cluster.apply(BASIC)
    cluster.wait_ready("iris", operator)
    stable = _by_role(cluster, "iris")["stable"]
    revision = stable["metadata"]["name"]
    entry_uid = cluster.objects("Service", "iris")["iris"]["metadata"]["uid"]
    kubectl = cluster.control_plane.kubectl
    kubectl("delete", "service", "iris", "-n", cluster.namespace)
    kubectl("delete", "deployment", revision, "-n", cluster.namespace, "--wait=false")

    def recreated() -> bool:
        entry = cluster.objects("Service", "iris").get("iris")
        deployment = cluster.objects("Deployment", "iris").get(revision)
        return (
            entry is not None
            and entry["metadata"]["uid"] != entry_uid
            and deployment is not None
            and deployment["metadata"]["uid"] != stable["metadata"]["uid"]
        )

    cluster.wait(recreated, "entry Service and revision Deployment recreated", operator)
    kubectl("label", "deployment", revision, "sluice.dev/role=draining", "--overwrite",
            "-n", cluster.namespace)  # fmt: skip
    cluster.wait(
        lambda: (
            _by_role(cluster, "iris").get("stable", {}).get("metadata", {}).get("name") == revision
        ),
        "the role label taken back",
        operator,
    )
    cluster.wait_ready("iris", operator)
