"""InferenceService manifests for the tests: the examples, and the invalid cases built on them.

The unit tier checks that `sluice_operator.spec.parse` refuses each invalid case; the cluster
tier checks that the API server refuses the same case, naming the same field.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
_INVALID = Path(__file__).with_name("invalid_inferenceservices.yaml")


@dataclass(frozen=True)
class InvalidCase:
    """A manifest that must be refused, the field the error must name, and its message."""

    name: str
    manifest: dict[str, Any]
    field: str
    message: str | None


def load(path: Path) -> dict[str, Any]:
    """One YAML document as a dict."""
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), f"{path} is not a mapping"
    return document


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7386): dicts merge, a null deletes, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def invalid_cases() -> list[InvalidCase]:
    """Every case of invalid_inferenceservices.yaml, applied to examples/basic.yaml."""
    base = load(ROOT / "examples" / "basic.yaml")
    raw = yaml.safe_load(_INVALID.read_text())
    return [
        InvalidCase(
            name=case["name"],
            manifest=merge(base, case["patch"]),
            field=case["field"],
            message=case.get("message"),
        )
        for case in raw
    ]
