"""Fixtures for the cluster tier: a real control plane, a namespace per test, SA kubeconfigs.

The control plane is started once per session (about half a minute) unless `make
cluster-up` already runs one in `.cluster/`, which is then reused and left running.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cluster import controlplane
from tests.cluster.controlplane import ControlPlane
from tests.cluster.operator_harness import Cluster, Operator, operator_in

NAMESPACE_TIMEOUT = 60.0


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    bin_dir = controlplane.find_bin_dir()
    running = controlplane.attach(controlplane.DEFAULT_STATE_DIR, bin_dir)
    if running is not None:
        yield running
        return
    state_dir = tmp_path_factory.mktemp("control-plane")
    try:
        yield controlplane.start(state_dir, bin_dir)
    finally:
        controlplane.stop(state_dir)


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    """A fresh namespace whose `default` ServiceAccount exists, so Pods can be admitted."""
    name = f"test-{secrets.token_hex(4)}"
    control_plane.create_namespace(name, NAMESPACE_TIMEOUT)
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture
def kubeconfig_for_service_account(
    control_plane: ControlPlane, tmp_path: Path
) -> Callable[[str, str], Path]:
    """`make(namespace, name)` -> a kubeconfig acting as exactly that ServiceAccount."""

    def make(namespace: str, name: str) -> Path:
        path = tmp_path / f"{namespace}.{name}.kubeconfig"
        return control_plane.service_account_kubeconfig(namespace, name, path)

    return make


@pytest.fixture
def resync_seconds() -> float:
    """The operator's resync period for `running`; a test module overrides it to resync faster."""
    return 300.0


@pytest.fixture
def running(
    control_plane: ControlPlane,
    namespace: str,
    kubeconfig_for_service_account: Callable[[str, str], Path],
    tmp_path: Path,
    resync_seconds: float,
) -> Iterator[tuple[Cluster, Operator]]:
    """The chart installed in the test's namespace and the operator running under its RBAC."""
    with operator_in(
        control_plane,
        namespace,
        kubeconfig_for_service_account,
        tmp_path / "operator.log",
        resync_seconds=resync_seconds,
    ) as pair:
        yield pair
