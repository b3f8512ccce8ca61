"""Generate the InferenceService CustomResourceDefinition from the pydantic models in `spec.py`.

pydantic writes JSON Schema (2020-12) with `$ref`s, `anyOf [X, null]` for optional fields and
titles; the API server wants a structural OpenAPI v3 schema: every node typed, no `$ref`, no
nullable unions, `x-kubernetes-*` extensions where a node is int-or-string or free-form.
`structural` does that translation and refuses any keyword it does not know how to carry, so a
new kind of field in `spec.py` fails here instead of producing a CRD the API server rejects.

    python -m sluice_operator.crd --write   # regenerate the committed CRD files
    python -m sluice_operator.crd --check   # exit 1 when they differ from the models
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from sluice_operator import spec

SHORT_NAMES = ["sisvc"]
"""`isvc` is KServe's short name; a cluster running both would resolve it to only one of them."""
CATEGORIES = ["sluice"]
CRD_FILE = f"{spec.API_GROUP}_{spec.PLURAL}.yaml"
OUTPUTS = (Path("crds") / CRD_FILE, Path("charts/sluice/crds") / CRD_FILE)
HEADER = (
    "# Generated from operator/sluice_operator/spec.py by "
    "`python -m sluice_operator.crd --write`; do not edit.\n"
)

_RULES = "x-kubernetes-validations"
_DROPPED = {"title", "additionalProperties", "$defs"}
_KEPT = {
    "type",
    "properties",
    "required",
    "items",
    "description",
    "default",
    "enum",
    "format",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
}

_READY = '.status.conditions[?(@.type=="Ready")]'
PRINTER_COLUMNS = [
    {"name": "URL", "type": "string", "jsonPath": ".status.url"},
    {"name": "Ready", "type": "string", "jsonPath": f"{_READY}.status"},
    {"name": "Stable", "type": "string", "jsonPath": ".status.stable"},
    {"name": "Canary", "type": "string", "jsonPath": ".status.canary"},
    {"name": "Shadow", "type": "string", "jsonPath": ".status.shadow"},
    {"name": "Reason", "type": "string", "jsonPath": f"{_READY}.reason", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


class _Dumper(yaml.SafeDumper):
    """Writes shared subtrees (one rule list used by three models) out in full, not as anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


class SchemaError(ValueError):
    """The pydantic schema holds something a structural CRD schema cannot express."""


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Inline `$ref` and collapse `anyOf [X, {type: null}]` to X; siblings override the target."""
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        rules = [*target.get(_RULES, []), *siblings.get(_RULES, [])]
        merged = {**target, **siblings, **({_RULES: rules} if rules else {})}
        return _resolve(merged, defs)
    branches = node.get("anyOf")
    if branches is not None and not node.get("x-kubernetes-int-or-string"):
        kept = [b for b in branches if b != {"type": "null"}]
        if len(kept) != 1:
            raise SchemaError(f"union of {len(kept)} types cannot be structural: {node}")
        siblings = {k: v for k, v in node.items() if k != "anyOf"}
        return _resolve({**kept[0], **siblings}, defs)
    return node


def _has_defaults(node: dict[str, Any]) -> bool:
    return any("default" in p or _has_defaults(p) for p in node.get("properties", {}).values())


def structural(node: dict[str, Any], defs: dict[str, Any], path: str = "") -> dict[str, Any]:
    """Translate one pydantic JSON schema node (and its children) into a structural node."""
    node = _resolve(node, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED or key.startswith("x-kubernetes-"):
            continue
        if key == "anyOf":
            out[key] = value
        elif key == "properties":
            out[key] = {
                name: structural(child, defs, f"{path}.{name}") for name, child in value.items()
            }
        elif key == "items":
            out[key] = structural(value, defs, f"{path}[]")
        elif key == "default":
            if value is not None:
                out[key] = {} if isinstance(value, dict) else value
        elif key in _KEPT:
            out[key] = value
        else:
            raise SchemaError(f"{path or '<root>'}: keyword {key!r} has no structural form")
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = structural(node["additionalProperties"], defs, f"{path}.*")
    if out.get("default") == {} and not _has_defaults(out):
        del out["default"]
    if "default" in out and out["default"] != {} and "description" in out:
        # kubectl explain shows descriptions, not defaults.
        out["description"] += f" Default: {json.dumps(out['default'])}."
    out.update({k: v for k, v in node.items() if k.startswith("x-kubernetes-")})
    out = dict(sorted(out.items()))
    if "type" not in out and not (
        out.get("x-kubernetes-int-or-string") or out.get("x-kubernetes-preserve-unknown-fields")
    ):
        raise SchemaError(f"{path or '<root>'}: untyped node {node}")
    return out


def openapi_schema() -> dict[str, Any]:
    """The CRD's `openAPIV3Schema`, generated from `spec.InferenceService`."""
    raw = spec.InferenceService.model_json_schema(by_alias=True, mode="validation")
    schema = structural(raw, raw.get("$defs", {}))
    schema["required"] = ["spec"]
    return schema


def definition() -> dict[str, Any]:
    """The whole CustomResourceDefinition as a dict."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{spec.PLURAL}.{spec.API_GROUP}"},
        "spec": {
            "group": spec.API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": spec.KIND,
                "listKind": f"{spec.KIND}List",
                "plural": spec.PLURAL,
                "singular": spec.SINGULAR,
                "shortNames": SHORT_NAMES,
                "categories": CATEGORIES,
            },
            "versions": [
                {
                    "name": spec.API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


def render() -> str:
    """The CRD as the YAML text committed under crds/ and charts/sluice/crds/."""
    body = yaml.dump(definition(), Dumper=_Dumper, sort_keys=False, width=100)
    return HEADER + body


def main(argv: Sequence[str] | None = None) -> int:
    """`--write` regenerates the committed files; `--check` reports which ones are stale."""
    parser = argparse.ArgumentParser(prog="python -m sluice_operator.crd", description=__doc__)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="write the CRD files")
    action.add_argument("--check", action="store_true", help="fail when the files are stale")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    args = parser.parse_args(argv)
    text = render()
    stale = []
    for relative in OUTPUTS:
        target = args.root / relative
        if args.write:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        elif not target.is_file() or target.read_text() != text:
            stale.append(str(relative))
    if stale:
        print(
            f"stale: {', '.join(stale)}; run `python -m sluice_operator.crd --write`",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
