"""Two operators peered through the chart's KopfPeering (operator.highAvailability): only the
higher-priority one acts; when it stops, as in a rolling update, the other takes over.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cluster.controlplane import ControlPlane
from tests.cluster.operator_harness import (
    GROUP,
    PLURAL,
    Cluster,
    Operator,
    install_chart,
    start_operator,
)
from tests.cluster.processes import wait_for

PEERING = "sluice"


def manifest(canary: bool = False) -> dict[str, object]:
    spec: dict[str, object] = {"model": {"name": "iris", "version": "1", "uri": "mlflow://iris/1"}}
    if canary:
        spec["canary"] = {
            "model": {"name": "iris", "version": "2", "uri": "mlflow://iris/2"},
            "trafficPercent": 20,
        }
    return {
        "apiVersion": "serving.sluice.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "iris"},
        "spec": spec,
    }


@pytest.fixture
def peers(
    control_plane: ControlPlane,
    namespace: str,
    kubeconfig_for_service_account: Callable[[str, str], Path],
    tmp_path: Path,
) -> Iterator[tuple[Cluster, Operator, Operator]]:
    release = install_chart(control_plane, namespace, "operator.highAvailability.enabled=true")
    wait_for(
        lambda: (
            control_plane.kubectl(
                "get", "kopfpeering", PEERING, "-n", namespace, check=False
            ).returncode
            == 0
        ),
        60,
        "the chart's KopfPeering",
    )
    kubeconfig = kubeconfig_for_service_account(namespace, f"{release}-operator")
    flags = lambda priority: (f"--peering={PEERING}", f"--priority={priority}")  # noqa: E731
    leader = start_operator(kubeconfig, namespace, tmp_path / "leader.log", peering=flags(200))
    standby = start_operator(kubeconfig, namespace, tmp_path / "standby.log", peering=flags(100))
    try:
        yield Cluster(control_plane, namespace), leader, standby
    finally:
        try:
            control_plane.kubectl(
                "delete", f"{PLURAL}.{GROUP}", "--all", "-n", namespace, "--timeout=60s"
            )
        finally:
            leader.stop()
            standby.stop()
            control_plane.helm("uninstall", release, "--namespace", namespace, "--wait=false")


def test_only_the_leader_acts_and_the_standby_takes_over(
    peers: tuple[Cluster, Operator, Operator],
) -> None:
    cluster, leader, standby = peers
    cluster.apply(manifest())
    cluster.wait_ready("iris", leader)
    # The status write that makes it Ready lands before the pass is counted, so wait for it.
    wait_for(lambda: leader.reconciliations() > 0, 30, "the leader's pass counted")
    assert standby.reconciliations() == 0
    assert standby.writes() == 0

    leader.stop()  # SIGTERM: kopf leaves the peering object on its way out
    cluster.apply(manifest(canary=True))
    cluster.wait_ready("iris", standby)
    wait_for(lambda: standby.writes() > 0, 30, "the standby's writes counted")
    shares = {r["role"]: r["trafficPercent"] for r in cluster.isvc("iris")["status"]["revisions"]}
    assert shares == {"stable": 80, "canary": 20}
