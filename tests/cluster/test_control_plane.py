"""The local control plane behaves like a real cluster where an operator depends on it.

Structural schemas and pruning, CEL rules, the status subresource, server-side apply field
ownership, ValidatingAdmissionPolicy, Deployments on kwok nodes (GPU ones included),
EndpointSlices, owner-reference garbage collection, RBAC for a ServiceAccount, and Helm.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.cluster.components import GPU_LABEL, GPU_RESOURCE, fake_nodes
from tests.cluster.controlplane import ControlPlane
from tests.cluster.processes import wait_for

WAIT = "--timeout=120s"
KWOK_NODES = {node["metadata"]["name"] for node in fake_nodes()}
IMAGE = "registry.invalid/sluice/fake:1"  # kwok runs no containers, so nothing is pulled


def widget_crd(group: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "subresources": {"status": {}},
                }
            ],
        },
    }


WIDGET_SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {"replicas": {"type": "integer", "minimum": 0}},
            "x-kubernetes-validations": [
                {"rule": "self.replicas <= 10", "message": "replicas must be at most 10"}
            ],
        },
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
    },
}


@pytest.fixture
def widgets(control_plane: ControlPlane, namespace: str) -> Iterator[str]:
    """A served, namespaced Widget CRD in a group of this test's own; yields `widgets.<group>`."""
    group = f"{namespace}.tests.sluice.dev"
    control_plane.create(widget_crd(group, WIDGET_SCHEMA))
    resource = f"widgets.{group}"
    control_plane.kubectl("wait", "--for=condition=Established", f"crd/{resource}", WAIT)
    yield resource
    control_plane.kubectl("delete", "crd", resource, "--wait=false")


def widget(namespace: str, resource: str, spec: dict[str, Any], **extra: Any) -> dict[str, Any]:
    group = resource.removeprefix("widgets.")
    metadata = {"name": "w", "namespace": namespace}
    return {
        "apiVersion": f"{group}/v1",
        "kind": "Widget",
        "metadata": metadata,
        "spec": spec,
        **extra,
    }


def test_crd_with_non_structural_schema_is_refused(
    control_plane: ControlPlane, namespace: str
) -> None:
    group = f"{namespace}.tests.sluice.dev"
    untyped_spec = {"type": "object", "properties": {"spec": {"properties": {"replicas": {}}}}}
    manifest = json.dumps(widget_crd(group, untyped_spec))

    refused = control_plane.kubectl("create", "-f", "-", input=manifest, check=False)

    assert refused.returncode != 0
    assert "openAPIV3Schema.properties[spec].type: Required value" in refused.stderr
    missing = control_plane.kubectl("get", "crd", f"widgets.{group}", check=False)
    assert "NotFound" in missing.stderr


def test_crd_prunes_unknown_fields_and_keeps_status_to_its_subresource(
    control_plane: ControlPlane, namespace: str, widgets: str
) -> None:
    spec = {"replicas": 2, "colour": "red"}
    warnings = control_plane.create(
        widget(namespace, widgets, spec, status={"phase": "Forged"}),
        validate="warn",
    )

    assert 'unknown field "spec.colour"' in warnings
    stored = control_plane.kubectl_json(widgets, "w", "-n", namespace)
    assert stored["spec"] == {"replicas": 2}
    assert "status" not in stored

    control_plane.kubectl(
        "patch", widgets, "w", "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"phase": "Ready"}}),
    )  # fmt: skip
    assert control_plane.kubectl_json(widgets, "w", "-n", namespace)["status"] == {"phase": "Ready"}


def test_crd_cel_rule_refuses_an_invalid_object(
    control_plane: ControlPlane, namespace: str, widgets: str
) -> None:
    manifest = json.dumps(widget(namespace, widgets, {"replicas": 11}))

    refused = control_plane.kubectl("create", "-f", "-", input=manifest, check=False)

    assert refused.returncode != 0
    assert "spec: Invalid value" in refused.stderr
    assert "replicas must be at most 10" in refused.stderr


def test_server_side_apply_reports_a_conflict_between_field_managers(
    control_plane: ControlPlane, namespace: str
) -> None:
    def apply(manager: str, replicas: str) -> Any:
        config_map = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "owned", "namespace": namespace},
            "data": {"replicas": replicas},
        }
        return control_plane.kubectl(
            "apply", "--server-side", f"--field-manager={manager}", "-f", "-",
            input=json.dumps(config_map), check=False,
        )  # fmt: skip

    assert apply("sluice-operator", "2").returncode == 0
    conflict = apply("someone-else", "3")

    assert conflict.returncode != 0
    assert 'conflict with "sluice-operator"' in conflict.stderr
    stored = control_plane.kubectl_json("configmap", "owned", "-n", namespace)
    assert stored["data"] == {"replicas": "2"}


def test_validating_admission_policy_denies_what_its_cel_expression_refuses(
    control_plane: ControlPlane, namespace: str
) -> None:
    name = f"{namespace}-pinned-version"
    api_version = "admissionregistration.k8s.io/v1"
    policy = {
        "apiVersion": api_version,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["configmaps"],
                    }
                ]
            },
            "validations": [
                {
                    "expression": "!has(object.data)"
                    " || object.data[?'version'].orValue('') != 'latest'",
                    "message": "version must be pinned, not latest",
                }
            ],
        },
    }
    binding = {
        "apiVersion": api_version,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }

    def dry_run(version: str) -> Any:
        return control_plane.kubectl(
            "create", "configmap", "model", "-n", namespace, f"--from-literal=version={version}",
            "--dry-run=server", check=False,
        )  # fmt: skip

    control_plane.create(policy, binding)
    try:
        # The policy is compiled and picked up asynchronously; poll until it bites.
        wait_for(lambda: dry_run("latest").returncode != 0, 60, "policy denies version=latest")
        assert "version must be pinned, not latest" in dry_run("latest").stderr
        assert dry_run("7").returncode == 0
    finally:
        control_plane.kubectl(
            "delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", name
        )


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod["status"].get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def test_deployment_becomes_available_on_kwok_nodes_and_is_garbage_collected_with_its_owner(
    control_plane: ControlPlane, namespace: str
) -> None:
    control_plane.kubectl("create", "configmap", "owner", "-n", namespace)
    owner = control_plane.kubectl_json("configmap", "owner", "-n", namespace)
    labels = {"app": "web"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": namespace,
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "owner",
                    "uid": owner["metadata"]["uid"],
                }
            ],
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "web", "image": IMAGE, "ports": [{"containerPort": 8080}]}
                    ]
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    control_plane.create(deployment, service)

    control_plane.kubectl(
        "wait", "--for=condition=Available", "deployment/web", "-n", namespace, WAIT
    )
    assert (
        control_plane.kubectl_json("deployment", "web", "-n", namespace)["status"][
            "availableReplicas"
        ]
        == 2
    )
    pods = control_plane.kubectl_json("pods", "-n", namespace, "-l", "app=web")["items"]
    assert len(pods) == 2
    assert {pod["spec"]["nodeName"] for pod in pods} <= KWOK_NODES
    assert all(pod["status"]["phase"] == "Running" and _ready(pod) for pod in pods)

    pod_ips = {pod["status"]["podIP"] for pod in pods}

    def endpoint_ips() -> set[str]:
        slices = control_plane.kubectl_json(
            "endpointslices", "-n", namespace, "-l", "kubernetes.io/service-name=web"
        )["items"]
        return {
            address
            for endpoint_slice in slices
            for endpoint in endpoint_slice.get("endpoints") or []
            if endpoint["conditions"].get("ready")
            for address in endpoint["addresses"]
        }

    wait_for(lambda: endpoint_ips() == pod_ips, 60, "EndpointSlices list the ready pods")

    control_plane.kubectl("delete", "configmap", "owner", "-n", namespace)
    control_plane.kubectl("wait", "--for=delete", "deployment/web", "-n", namespace, WAIT)
    control_plane.kubectl("wait", "--for=delete", "pods", "-l", "app=web", "-n", namespace, WAIT)
    assert control_plane.kubectl_json("replicasets", "-n", namespace)["items"] == []


def test_pod_asking_for_a_gpu_runs_on_a_gpu_node(
    control_plane: ControlPlane, namespace: str
) -> None:
    container = {"name": "model", "image": IMAGE, "resources": {"limits": {GPU_RESOURCE: "1"}}}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "gpu", "namespace": namespace},
        "spec": {"containers": [container]},
    }
    control_plane.create(pod)

    control_plane.kubectl("wait", "--for=condition=Ready", "pod/gpu", "-n", namespace, WAIT)
    node_name = control_plane.kubectl_json("pod", "gpu", "-n", namespace)["spec"]["nodeName"]
    node = control_plane.kubectl_json("node", node_name)
    assert node["metadata"]["labels"][GPU_LABEL] == "true"
    assert int(node["status"]["allocatable"][GPU_RESOURCE]) >= 1


def _status_of(call: Callable[[], object]) -> int:
    try:
        call()
    except ApiException as error:
        return int(error.status)
    return 200


def test_service_account_is_refused_until_a_role_is_bound(
    control_plane: ControlPlane,
    namespace: str,
    kubeconfig_for_service_account: Callable[[str, str], Path],
) -> None:
    control_plane.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    kubeconfig = kubeconfig_for_service_account(namespace, "reader")
    whoami = control_plane.kubectl(
        "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", kubeconfig=kubeconfig
    )
    assert whoami.stdout == f"system:serviceaccount:{namespace}:reader"

    with config.new_client_from_config(config_file=str(kubeconfig)) as api_client:
        core = client.CoreV1Api(api_client)
        assert _status_of(lambda: core.list_namespaced_config_map(namespace)) == 403

        control_plane.kubectl(
            "create", "role", "read-configmaps", "--verb=get,list", "--resource=configmaps",
            "-n", namespace,
        )  # fmt: skip
        control_plane.kubectl(
            "create", "rolebinding", "reader", "--role=read-configmaps",
            f"--serviceaccount={namespace}:reader", "-n", namespace,
        )  # fmt: skip
        wait_for(
            lambda: _status_of(lambda: core.list_namespaced_config_map(namespace)) == 200,
            30,
            "RoleBinding grants list configmaps",
        )
        names = {cm.metadata.name for cm in core.list_namespaced_config_map(namespace).items}
        assert (
            "kube-root-ca.crt" in names
        )  # published into every namespace by the controller manager
        assert _status_of(lambda: core.list_namespaced_config_map("default")) == 403
        assert _status_of(lambda: core.list_namespaced_secret(namespace)) == 403


TRIVIAL_CHART = {
    "Chart.yaml": "apiVersion: v2\nname: trivial\nversion: 0.1.0\n",
    "values.yaml": "message: hello\n",
    "templates/configmap.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  message: {{ .Values.message | quote }}
""",
    "templates/deployment.yaml": f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{{{ .Release.Name }}}}-web
spec:
  replicas: 1
  selector:
    matchLabels: {{app: trivial}}
  template:
    metadata:
      labels: {{app: trivial}}
    spec:
      containers:
      - name: web
        image: {IMAGE}
""",
}


def test_helm_installs_and_uninstalls_a_chart(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    chart = tmp_path / "trivial"
    for name, text in TRIVIAL_CHART.items():
        (chart / name).parent.mkdir(parents=True, exist_ok=True)
        (chart / name).write_text(text)

    control_plane.helm(
        "install", "demo", str(chart), "-n", namespace, "--set", "message=from-test",
        "--wait", "--timeout=2m",
    )  # fmt: skip

    stored = control_plane.kubectl_json("configmap", "demo-config", "-n", namespace)
    assert stored["data"] == {"message": "from-test"}
    web = control_plane.kubectl_json("deployment", "demo-web", "-n", namespace)
    assert web["status"]["availableReplicas"] == 1
    releases = json.loads(control_plane.helm("list", "-n", namespace, "-o", "json").stdout)
    assert [(r["name"], r["status"]) for r in releases] == [("demo", "deployed")]

    control_plane.helm("uninstall", "demo", "-n", namespace, "--wait", "--timeout=2m")

    gone = control_plane.kubectl("get", "configmap", "demo-config", "-n", namespace, check=False)
    assert "NotFound" in gone.stderr
    assert json.loads(control_plane.helm("list", "-n", namespace, "-o", "json").stdout) == []
    release_secrets = control_plane.kubectl_json("secrets", "-n", namespace, "-l", "owner=helm")
    assert release_secrets["items"] == []
