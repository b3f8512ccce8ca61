"""The Helm chart, rendered and linted by the real helm binary (no cluster needed).

What the templates must get right: the operator runs the `sluice-operator` command standalone
or peered, hardened; RBAC is exactly the verbs the operator uses, scoped to the watched
namespaces when there is a list; bad values are refused by values.schema.json.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from sluice_operator import __version__, crd
from sluice_operator.cli import parse_args
from sluice_operator.gateway import RBAC_RULES

from tests.cluster.controlplane import REPO, find_bin_dir

CHART = REPO / "charts" / "sluice"
RELEASE = "demo"
NAMESPACE = "sluice-system"


@dataclass(frozen=True)
class Helm:
    """The built helm, told the built cluster's version (from source it assumes v1.20)."""

    binary: Path
    kube_version: str

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(self.binary), *args]
        if args[0] in {"template", "lint"}:
            argv.append(f"--kube-version={self.kube_version}")
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def render(self, *sets: str, crds: bool = False) -> list[dict[str, Any]]:
        args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
        args += [f"--set={s}" for s in sets]
        if crds:
            args.append("--include-crds")
        return [d for d in yaml.safe_load_all(self.run(*args).stdout) if d]


@pytest.fixture(scope="module")
def helm() -> Helm:
    bin_dir = find_bin_dir()
    out = subprocess.run(
        [str(bin_dir / "kubectl"), "version", "--client", "-o", "json"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return Helm(bin_dir / "helm", json.loads(out)["clientVersion"]["gitVersion"])


def _one(objects: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"{len(found)} {kind} named {name}"
    return found[0]


def _kinds(objects: Iterable[dict[str, Any]]) -> list[str]:
    return sorted(o["kind"] for o in objects)


def _container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    pod = _one(objects, "Deployment")["spec"]["template"]["spec"]
    container: dict[str, Any] = pod["containers"][0]
    return container


def test_lint_is_clean_in_every_mode(helm: Helm) -> None:
    for sets in (
        [],
        ["operator.highAvailability.enabled=true", "metrics.serviceMonitor.enabled=true"],
    ):
        result = helm.run("lint", "--strict", str(CHART), *[f"--set={s}" for s in sets])
        assert "0 chart(s) failed" in result.stdout, result.stdout


def _granted(objects: Iterable[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for o in objects
        if o["kind"] == "ClusterRole"
        for rule in o["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_default_install_is_one_standalone_operator(helm: Helm) -> None:
    objects = helm.render()
    assert _kinds(objects) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
        "ServiceAccount",
    ]
    deployment = _one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    container = _container(objects)
    assert container["command"] == ["sluice-operator"]
    assert container["image"] == "ghcr.io/sluice-dev/sluice-operator:0.1.0"
    assert container["args"] == [
        "--all-namespaces",
        "--standalone",
        "--metrics-port=9090",
        "--health-port=8080",
        "--runtime-image=ghcr.io/sluice-dev/sluice-runtime:0.1.0",
        "--router-image=docker.io/nginxinc/nginx-unprivileged:1.29",
        "--router-replicas=2",
        "--cluster-domain=cluster.local",
        "--resync-seconds=300",
        "--log-level=INFO",
    ]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_the_chart_runs_a_command_line_the_operator_accepts(helm: Helm) -> None:
    for sets in ([], ["operator.watchNamespaces={a,b}", "operator.highAvailability.enabled=true"]):
        args = parse_args(_container(helm.render(*sets))["args"])
        assert args.metrics_port == 9090
        assert args.health_port == 8080


def test_high_availability_runs_peered_replicas_spread_over_nodes(helm: Helm) -> None:
    objects = helm.render("operator.highAvailability.enabled=true")
    deployment = _one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    args = _container(objects)["args"]
    assert "--peering=sluice" in args
    assert "--standalone" not in args
    peering = _one(objects, "ClusterKopfPeering", "sluice")
    assert "namespace" not in peering["metadata"]
    anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"] == 100
    assert {("kopf.dev", "clusterkopfpeerings", v) for v in ("list", "watch", "patch")} <= (
        _granted(objects)
    )


def test_pod_and_container_are_hardened(helm: Helm) -> None:
    objects = helm.render()
    pod = _one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = _container(objects)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    resources = _container(objects)["resources"]
    assert resources["requests"]["cpu"]
    assert resources["limits"]["memory"]


# What kopf itself does with the handlers handlers.py registers: list+watch InferenceServices
# (the only kind it watches), patch its finalizer onto them.
KOPF_RULES = {
    ("serving.sluice.dev", "inferenceservices", "list"),
    ("serving.sluice.dev", "inferenceservices", "watch"),
    ("serving.sluice.dev", "inferenceservices", "patch"),
}


def test_rbac_is_exactly_what_the_gateway_and_kopf_use(helm: Helm) -> None:
    objects = helm.render()
    for obj in objects:
        for rule in obj.get("rules", []):
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
    used = {(g, r, v) for g, r, verbs in RBAC_RULES for v in verbs} | KOPF_RULES
    # A server-side apply that creates an object is authorized as create as well as patch.
    creates = {(g, r, "create") for g, r, v in used if v == "patch" and "/" not in r}
    creates.discard(("serving.sluice.dev", "inferenceservices", "create"))
    assert _granted(objects) == used | creates


def test_watched_namespaces_get_role_bindings_not_a_cluster_binding(helm: Helm) -> None:
    objects = helm.render(
        "operator.watchNamespaces={risk,search}",
        "operator.highAvailability.enabled=true",
    )
    bindings = [o for o in objects if o["kind"] == "RoleBinding"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["risk", "search"]
    assert {b["roleRef"]["name"] for b in bindings} == {"demo-sluice-operator"}
    assert not [o for o in objects if o["kind"] == "ClusterRoleBinding"]
    args = _container(objects)["args"]
    assert args[:2] == ["--namespace=risk", "--namespace=search"]
    assert "--all-namespaces" not in args
    peerings = [o for o in objects if o["kind"] == "KopfPeering"]
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["risk", "search"]
    assert ("kopf.dev", "kopfpeerings", "patch") in _granted(objects)
    assert not {g for g in _granted(objects) if g[1] == "clusterkopfpeerings"}


def test_service_monitor_only_when_asked(helm: Helm) -> None:
    assert not [o for o in helm.render() if o["kind"] == "ServiceMonitor"]
    objects = helm.render("metrics.serviceMonitor.enabled=true")
    monitor = _one(objects, "ServiceMonitor")
    service = _one(objects, "Service")
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )


def test_images_can_be_pinned_by_digest(helm: Helm) -> None:
    digest = "sha256:" + "a" * 64
    objects = helm.render(f"runtime.image.digest={digest}", "operator.image.tag=1.2.3")
    container = _container(objects)
    assert f"--runtime-image=ghcr.io/sluice-dev/sluice-runtime@{digest}" in container["args"]
    assert container["image"] == "ghcr.io/sluice-dev/sluice-operator:1.2.3"


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("operator.highAvailability.replicas=1", "replicas"),
        ("operator.watchNamespaces={Not_A_Namespace}", "watchNamespaces"),
        ("runtime.image.digest=sha256:short", "digest"),
        ("metrics.port=80", "port"),
        ("operator.replicas=3", "replicas"),
        ("operator.logLevel=TRACE", "logLevel"),
    ],
)
def test_values_schema_refuses_bad_values(helm: Helm, value: str, complaint: str) -> None:
    result = helm.run("template", RELEASE, str(CHART), f"--set={value}", check=False)
    assert result.returncode != 0
    assert complaint in result.stderr


def test_chart_ships_the_generated_crd(helm: Helm) -> None:
    objects = helm.render(crds=True)
    shipped = _one(objects, "CustomResourceDefinition", "inferenceservices.serving.sluice.dev")
    assert shipped == crd.definition()
    assert _one(objects, "CustomResourceDefinition", "clusterkopfpeerings.kopf.dev")


def test_chart_image_and_package_agree() -> None:
    """The chart's default images are the package's version; the pod runs as the image's user."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == __version__
    dockerfile = (REPO / "Dockerfile.operator").read_text()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["operator"]["image"]["tag"] == ""
    template = (CHART / "templates" / "deployment.yaml").read_text()
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)
    assert user is not None
    assert f"runAsUser: {user.group(1)}" in template
    assert f"runAsGroup: {user.group(2)}" in template
