"""`helm install` of the chart on the real API server: everything it renders is admitted (the
operator pod under the `restricted` Pod Security level included), and its ServiceAccount can do
exactly what the operator does, nothing more (checked by the API server's own authorizer).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import config
from sluice_operator.gateway import Gateway
from sluice_operator.naming import LABEL_ISVC
from sluice_operator.plan import ObjectRef

from tests.cluster.controlplane import REPO, ControlPlane
from tests.cluster.processes import wait_for

CHART = REPO / "charts" / "sluice"
POD_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def chart_namespace(control_plane: ControlPlane) -> Iterator[str]:
    """One namespace for this module's release, whose pods must meet the restricted profile."""
    name = f"chart-{secrets.token_hex(4)}"
    control_plane.kubectl("create", "namespace", name)
    control_plane.kubectl(
        "label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted"
    )
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false")


@pytest.fixture(scope="module")
def release(control_plane: ControlPlane, chart_namespace: str) -> Iterator[str]:
    """The chart installed once for the module: HA, watching only its own namespace."""
    name = f"sluice-{secrets.token_hex(3)}"
    control_plane.helm(
        "install", name, str(CHART), "--namespace", chart_namespace,
        f"--set=operator.watchNamespaces={{{chart_namespace}}}",
        "--set=operator.highAvailability.enabled=true",
        "--wait=false",
    )  # fmt: skip
    yield name
    control_plane.helm("uninstall", name, "--namespace", chart_namespace, "--wait=false")


def _can(cluster: ControlPlane, namespace: str, account: str, *request: str) -> bool:
    result = cluster.kubectl(
        "auth", "can-i", *request, "-n", namespace,
        f"--as=system:serviceaccount:{namespace}:{account}", check=False,
    )  # fmt: skip
    assert result.stdout.strip() in {"yes", "no"}, result.stderr
    return result.stdout.strip() == "yes"


def test_chart_installs_and_its_pods_pass_restricted_pod_security(
    control_plane: ControlPlane, chart_namespace: str, release: str
) -> None:
    selector = f"app.kubernetes.io/instance={release}"

    def pods() -> list[dict[str, object]]:
        listed = control_plane.kubectl_json("pods", "-n", chart_namespace, "-l", selector)
        return list(listed["items"])

    wait_for(lambda: len(pods()) == 2, POD_TIMEOUT, "both peered operator pods admitted")
    deployment = control_plane.kubectl_json(
        "deployment", f"{release}-operator", "-n", chart_namespace
    )
    assert deployment["spec"]["template"]["spec"]["containers"][0]["command"] == ["sluice-operator"]
    peering = control_plane.kubectl_json("kopfpeering", "sluice", "-n", chart_namespace)
    assert peering["metadata"]["labels"]["app.kubernetes.io/instance"] == release
    control_plane.kubectl("get", "crd", "inferenceservices.serving.sluice.dev")


@pytest.mark.parametrize(
    ("request_", "allowed"),
    [
        (("get", "inferenceservices.serving.sluice.dev"), True),
        (("watch", "inferenceservices.serving.sluice.dev"), True),
        (("patch", "inferenceservices.serving.sluice.dev", "--subresource=status"), True),
        (("create", "deployments.apps"), True),
        (("patch", "deployments.apps"), True),
        (("delete", "services"), True),
        (("patch", "horizontalpodautoscalers.autoscaling"), True),
        (("delete", "poddisruptionbudgets.policy"), True),
        (("watch", "pods"), True),
        (("watch", "services"), True),
        (("watch", "configmaps"), True),
        (("watch", "horizontalpodautoscalers.autoscaling"), True),
        (("watch", "poddisruptionbudgets.policy"), True),
        (("create", "events"), True),
        (("patch", "kopfpeerings.kopf.dev"), True),
        (("delete", "inferenceservices.serving.sluice.dev"), False),
        (("create", "inferenceservices.serving.sluice.dev"), False),
        (("update", "deployments.apps"), False),
        (("delete", "pods"), False),
        (("get", "secrets"), False),
        (("create", "pods/exec"), False),
        (("list", "nodes"), False),
    ],
)
def test_service_account_may_do_exactly_what_the_operator_does(
    control_plane: ControlPlane,
    chart_namespace: str,
    release: str,
    request_: tuple[str, ...],
    allowed: bool,
) -> None:
    assert _can(control_plane, chart_namespace, f"{release}-operator", *request_) is allowed


def test_permissions_stop_at_the_watched_namespaces(
    control_plane: ControlPlane, chart_namespace: str, release: str
) -> None:
    account = f"system:serviceaccount:{chart_namespace}:{release}-operator"
    elsewhere = control_plane.kubectl(
        "auth", "can-i", "list", "inferenceservices.serving.sluice.dev", "-n", "default",
        f"--as={account}", check=False,
    )  # fmt: skip
    assert elsewhere.stdout.strip() == "no"


def test_gateway_can_create_and_change_children_as_the_operator_account(
    control_plane: ControlPlane,
    chart_namespace: str,
    release: str,
    kubeconfig_for_service_account: Callable[[str, str], Path],
) -> None:
    """The gateway's own calls under the chart's RBAC: server-side applies that create and
    change, the labelled listing and watch the informers make, delete."""
    kubeconfig = kubeconfig_for_service_account(chart_namespace, f"{release}-operator")
    gateway = Gateway(config.new_client_from_config(config_file=str(kubeconfig)))
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "probe",
            "namespace": chart_namespace,
            "labels": {LABEL_ISVC: "probe"},
        },
        "data": {"a": "1"},
    }
    gateway.apply(config_map)
    items, version = gateway.list_objects("v1", "ConfigMap", chart_namespace, LABEL_ISVC)
    assert [(i["kind"], i["metadata"]["name"], i["data"]) for i in items] == [
        ("ConfigMap", "probe", {"a": "1"})
    ]
    changed = gateway.apply({**config_map, "data": {"a": "2"}})
    stream = gateway.watch("v1", "ConfigMap", chart_namespace, LABEL_ISVC, version, 10)
    event_type, seen = next(e for e in stream if e[0] != "BOOKMARK")
    stream.close()
    assert (event_type, seen["data"]) == ("MODIFIED", {"a": "2"})
    assert seen["metadata"]["resourceVersion"] == changed["metadata"]["resourceVersion"]
    gateway.delete(ObjectRef.of(config_map))
    assert (
        control_plane.kubectl(
            "get", "configmap", "probe", "-n", chart_namespace, "--ignore-not-found", "-o", "name"
        ).stdout
        == ""
    )
