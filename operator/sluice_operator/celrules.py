"""Validation rules that exist twice: as CEL in the CRD and as Python in `sluice render`.

A `Rule` holds both halves side by side so they cannot drift apart silently: the CEL text goes
into the schema as an `x-kubernetes-validations` entry, the Python check runs during model
validation and fails with the same message. `field_path` points the error at the field the
rule is about, for the API server (`fieldPath`) and for `describe_errors` alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, ValidationError
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

Reason = Literal["FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired"]
VALIDATIONS = "x-kubernetes-validations"
ERROR_TYPE = "sluice_rule"


@dataclass(frozen=True)
class Rule:
    """One cross-field or friendly-message check, in CEL and in Python."""

    cel: str
    message: str
    check: Callable[[Any], bool]
    field_path: str | None = None
    reason: Reason = "FieldValueInvalid"

    def __post_init__(self) -> None:
        # In a CEL string literal `\?` or `\.` is an escape of its own: a regex written with
        # backslashes would mean one thing to the API server and another to Python.
        if "\\" in self.cel:
            raise ValueError(f"CEL rule {self.cel!r}: write regexes with [?] classes, not \\")

    @classmethod
    def pattern(cls, regex: str, message: str) -> Rule:
        """A string rule from one RE2-compatible regex, matched the same way on both sides."""
        return cls(
            cel=f"self.matches('{regex}')", message=message, check=lambda v: matches(regex, v)
        )

    def schema(self) -> dict[str, str]:
        """The `x-kubernetes-validations` entry for this rule."""
        entry = {"rule": self.cel, "message": self.message, "reason": self.reason}
        if self.field_path is not None:
            entry["fieldPath"] = self.field_path
        return entry

    def enforce(self, value: Any) -> None:
        """Raise a pydantic error carrying the message and field path when the check fails."""
        if not self.check(value):
            raise rule_error(self.message, self.field_path)


def rule_error(message: str, field_path: str | None = None) -> PydanticCustomError:
    """An error `describe_errors` reports at the validated object's path plus `field_path`."""
    return PydanticCustomError(ERROR_TYPE, message, {"field_path": field_path or ""})


def matches(regex: str, value: str) -> bool:
    """CEL's `matches`: true when the regex matches anywhere in the value (RE2 semantics)."""
    return re.search(regex, value) is not None


def cel(schema: dict[str, Any], rules: Iterable[Rule]) -> None:
    """Append the rules to a JSON schema node's `x-kubernetes-validations`."""
    entries = [rule.schema() for rule in rules]
    if entries:
        schema[VALIDATIONS] = [*schema.get(VALIDATIONS, []), *entries]


@dataclass(frozen=True)
class Checked:
    """`Annotated` marker attaching rules to one field's type: checked and emitted together."""

    rules: tuple[Rule, ...]

    def __init__(self, *rules: Rule) -> None:
        object.__setattr__(self, "rules", rules)

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._validate, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        node = dict(handler(schema))
        cel(node, self.rules)
        return node

    def _validate(self, value: Any) -> Any:
        for rule in self.rules:
            rule.enforce(value)
        return value


def describe_errors(error: ValidationError) -> list[str]:
    """One `path.to.field: message` line per problem, naming fields as the API server does."""
    lines = []
    for item in error.errors():
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in item["loc"])
        if item["type"] == ERROR_TYPE:
            path += str((item.get("ctx") or {}).get("field_path", ""))
        lines.append(f"{path.lstrip('.') or '<root>'}: {item['msg']}")
    return lines
