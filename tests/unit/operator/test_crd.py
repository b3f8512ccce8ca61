"""The generated CRD: committed copies are current, the schema is structural and documented."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sluice_operator import crd
from sluice_operator.spec import parse

from tests.data.isvc_cases import EXAMPLES, ROOT, invalid_cases, load

_RULES = "x-kubernetes-validations"
_TYPES = {"object", "array", "string", "integer", "number", "boolean"}


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = crd.definition()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{name}")
    if "items" in node:
        yield from _nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _nodes(node["additionalProperties"], f"{path}.*")


@pytest.mark.parametrize("relative", crd.OUTPUTS, ids=str)
def test_committed_crd_matches_the_models(relative: Path) -> None:
    assert (ROOT / relative).read_text() == crd.render(), (
        f"{relative} is stale: run `python -m sluice_operator.crd --write`"
    )


def test_check_flags_a_stale_copy_and_write_fixes_it(tmp_path: Path) -> None:
    assert crd.main(["--check", "--root", str(tmp_path)]) == 1
    assert crd.main(["--write", "--root", str(tmp_path)]) == 0
    assert crd.main(["--check", "--root", str(tmp_path)]) == 0
    stale = tmp_path / crd.OUTPUTS[1]
    stale.write_text(stale.read_text().replace("sisvc", "isvc"))
    assert crd.main(["--check", "--root", str(tmp_path)]) == 1


def test_rendered_yaml_has_no_anchors_and_parses_back() -> None:
    text = crd.render()
    assert "&id" not in text
    assert "*id" not in text
    assert yaml.safe_load(text) == crd.definition()


def test_every_node_is_structural() -> None:
    for path, node in _nodes(_schema()):
        assert not {"$ref", "nullable", "title", "exclusiveMinimum", "const"} & set(node), path
        if node.get("x-kubernetes-int-or-string"):
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
        else:
            assert not {"anyOf", "oneOf", "allOf"} & set(node), path
            if not node.get("x-kubernetes-preserve-unknown-fields"):
                assert node.get("type") in _TYPES, path
        assert not ("properties" in node and "additionalProperties" in node), path


def test_every_field_is_described_for_kubectl_explain() -> None:
    undocumented = [
        path
        for path, node in _nodes(_schema())
        if path and not path.endswith((".*", "[]")) and not node.get("description")
    ]
    # The API server forbids describing metadata: it is the standard ObjectMeta.
    assert undocumented == [".metadata", ".metadata.name"]


def test_preserve_unknown_fields_only_where_free_form() -> None:
    free = [p for p, n in _nodes(_schema()) if n.get("x-kubernetes-preserve-unknown-fields")]
    assert free == [".spec.runtime.env[].valueFrom", ".spec.pod.affinity"]


def test_object_defaults_exist_only_where_children_have_defaults() -> None:
    spec = _schema()["properties"]["spec"]["properties"]
    assert spec["runtime"]["default"] == {}
    assert spec["scaling"]["default"] == {}
    assert "default" not in spec["pod"]
    assert "default" not in spec["traffic"]


def test_cel_rules_carry_messages_and_reasons() -> None:
    rules = [r for _, n in _nodes(_schema()) for r in n.get("x-kubernetes-validations", [])]
    assert len(rules) >= 12
    for rule in rules:
        assert rule["message"], rule
        assert rule["reason"].startswith("FieldValue"), rule
    cross_field = [r for r in rules if "fieldPath" in r]
    assert {r["fieldPath"] for r in cross_field} >= {
        ".digest",
        ".maxReplicas",
        ".canary.model",
        ".shadow.model",
    }


def test_every_cel_rule_has_an_invalid_case_both_tiers_apply() -> None:
    """Each rule is exercised against the API server (cluster tier) and Python (unit tier)."""
    rules = {r["message"] for _, n in _nodes(_schema()) for r in n.get(_RULES, [])}
    messages = [case.message for case in invalid_cases() if case.message]
    untested = sorted(rule for rule in rules if not any(m in rule for m in messages))
    assert untested == []


def test_names_status_and_printer_columns() -> None:
    definition = crd.definition()
    names = definition["spec"]["names"]
    assert names["shortNames"] == ["sisvc"]
    assert names["categories"] == ["sluice"]
    version = definition["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    status = _schema()["properties"]["status"]["properties"]
    for column in version["additionalPrinterColumns"]:
        field = column["jsonPath"].split(".")[2].split("[")[0]
        if column["jsonPath"].startswith(".status."):
            assert field in status, column
    headers = [c["name"] for c in version["additionalPrinterColumns"] if "priority" not in c]
    assert headers == ["URL", "Ready", "Stable", "Canary", "Shadow", "Age"]


def test_unsupported_keywords_fail_generation() -> None:
    with pytest.raises(crd.SchemaError, match="exclusiveMinimum"):
        crd.structural({"type": "integer", "exclusiveMinimum": 0}, {})
    with pytest.raises(crd.SchemaError, match="union"):
        crd.structural({"anyOf": [{"type": "integer"}, {"type": "boolean"}]}, {})


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates(path: Path) -> None:
    document = load(path)
    assert document["apiVersion"] == "serving.sluice.dev/v1alpha1"
    assert parse(document).metadata.name == document["metadata"]["name"]


def test_examples_cover_the_documented_scenarios() -> None:
    specs = {p.stem: parse(load(p)).spec for p in EXAMPLES}
    assert set(specs) >= {"basic", "gpu", "canary", "shadow", "sticky-ab"}
    assert specs["gpu"].runtime.resources.limits["nvidia.com/gpu"] == 1
    assert specs["canary"].canary is not None
    assert specs["shadow"].shadow is not None
    assert specs["sticky-ab"].traffic.sticky_header == "x-user-id"
