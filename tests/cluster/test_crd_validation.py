"""The generated CRD on a real API server: it installs, refuses bad manifests at apply time
naming the field, accepts every example (defaulting them as spec.py does), and prints columns.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from sluice_operator import crd
from sluice_operator.spec import InferenceServiceSpec, parse

from tests.cluster.controlplane import REPO, ControlPlane
from tests.data.isvc_cases import EXAMPLES, InvalidCase, invalid_cases, load

CRD_NAME = f"{crd.spec.PLURAL}.{crd.spec.API_GROUP}"
CRD_FILE = REPO / crd.OUTPUTS[0]


@pytest.fixture(scope="module")
def isvc_crd(control_plane: ControlPlane) -> ControlPlane:
    """The committed CRD applied (server-side, so a chart install before us is no conflict)."""
    control_plane.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=sluice-tests",
        "-f",
        str(CRD_FILE),
    )
    control_plane.kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")
    return control_plane


@pytest.fixture(scope="module")
def validation_namespace(isvc_crd: ControlPlane) -> Iterator[str]:
    """One namespace for the refused manifests: nothing is ever created in it."""
    name = f"crd-{secrets.token_hex(4)}"
    isvc_crd.kubectl("create", "namespace", name)
    yield name
    isvc_crd.kubectl("delete", "namespace", name, "--wait=false")


def _apply(cluster: ControlPlane, namespace: str, manifest: dict[str, Any]) -> Any:
    return cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=json.dumps(manifest), check=False
    )


def _columns(text: str) -> list[dict[str, str]]:
    """kubectl's table as dicts, cut at the header's column starts (cells may hold spaces)."""
    header, *rows = text.splitlines()
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    names = header.split()
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    return [{n: row[a:b].strip() for n, (a, b) in zip(names, bounds, strict=True)} for row in rows]


@pytest.mark.parametrize("case", invalid_cases(), ids=lambda c: c.name)
def test_api_server_refuses_invalid_manifest_naming_the_field(
    isvc_crd: ControlPlane, validation_namespace: str, case: InvalidCase
) -> None:
    result = _apply(isvc_crd, validation_namespace, case.manifest)
    assert result.returncode != 0, f"accepted: {result.stdout}"
    assert case.field in result.stderr, result.stderr
    if case.message is not None:
        assert case.message in result.stderr, result.stderr
    name = case.manifest["metadata"]["name"]
    missing = isvc_crd.kubectl(
        "get", "sisvc", name, "-n", validation_namespace, "--ignore-not-found", "-o", "name"
    )
    assert missing.stdout == ""


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_accepted_and_defaulted_as_python_defaults_them(
    isvc_crd: ControlPlane, namespace: str, path: Any
) -> None:
    isvc_crd.kubectl("apply", "-n", namespace, "-f", str(path))
    document = load(path)
    stored = isvc_crd.kubectl_json("sisvc", document["metadata"]["name"], "-n", namespace)
    assert stored["spec"]["runtime"]["device"] in {"auto", "cpu", "cuda"}
    assert stored["spec"]["scaling"]["minReplicas"] >= 1
    assert InferenceServiceSpec.model_validate(stored["spec"]) == parse(document).spec


def test_printer_columns_show_url_readiness_and_traffic(
    isvc_crd: ControlPlane, namespace: str
) -> None:
    manifest = load(REPO / "examples" / "canary.yaml")
    isvc_crd.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    status = {
        "status": {
            "observedGeneration": 1,
            "url": f"http://fraud.{namespace}.svc.cluster.local",
            "stable": "7 (90%)",
            "canary": "8 (10%)",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "lastTransitionTime": "2025-01-01T00:00:00Z",
                    "reason": "AllRevisionsReady",
                    "message": "2 revisions ready",
                }
            ],
        }
    }
    isvc_crd.kubectl(
        "patch",
        "sisvc",
        "fraud",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )
    table = _columns(isvc_crd.kubectl("get", "sisvc", "-n", namespace).stdout)
    assert list(table[0]) == ["NAME", "URL", "READY", "STABLE", "CANARY", "SHADOW", "AGE"]
    assert table[0] == {
        "NAME": "fraud",
        "URL": status["status"]["url"],
        "READY": "True",
        "STABLE": "7 (90%)",
        "CANARY": "8 (10%)",
        "SHADOW": "",
        "AGE": table[0]["AGE"],
    }
    wide = isvc_crd.kubectl("get", "sisvc", "-n", namespace, "-o", "wide").stdout
    assert "REASON" in wide.splitlines()[0]
    assert "AllRevisionsReady" in wide
    by_category = isvc_crd.kubectl("get", "sluice", "-n", namespace, "-o", "name").stdout
    assert by_category.split() == ["inferenceservice.serving.sluice.dev/fraud"]


def test_status_is_a_subresource_with_its_own_schema(
    isvc_crd: ControlPlane, namespace: str
) -> None:
    manifest = {**load(REPO / "examples" / "basic.yaml"), "status": {"url": "http://spoofed"}}
    isvc_crd.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    stored = isvc_crd.kubectl_json("sisvc", "iris", "-n", namespace)
    assert "status" not in stored or "url" not in stored["status"]
    bad = {"status": {"conditions": [{"type": "Ready", "status": "Maybe"}]}}
    result = isvc_crd.kubectl(
        "patch",
        "sisvc",
        "iris",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(bad),
        check=False,
    )
    assert result.returncode != 0
    assert "status.conditions[0].status" in result.stderr
    assert "status.conditions[0].reason" in result.stderr


def test_kubectl_explain_shows_the_model_descriptions(isvc_crd: ControlPlane) -> None:
    explained = isvc_crd.kubectl("explain", "sisvc.spec.model.digest").stdout
    description = crd.openapi_schema()["properties"]["spec"]["properties"]["model"]["properties"][
        "digest"
    ]["description"]
    assert " ".join(description.split()[:6]) in " ".join(explained.split())


def test_committed_crd_file_is_what_the_server_stores(isvc_crd: ControlPlane) -> None:
    stored = isvc_crd.kubectl_json("crd", CRD_NAME)
    version = stored["spec"]["versions"][0]
    expected = yaml.safe_load(CRD_FILE.read_text())["spec"]["versions"][0]
    assert version["schema"] == expected["schema"]
    assert version["additionalPrinterColumns"] == expected["additionalPrinterColumns"]
    assert stored["spec"]["names"]["shortNames"] == ["sisvc"]
