"""Building blocks of the resource models: the base model, and Kubernetes shapes passed through.

`SpecModel` gives every model of the InferenceService the same wire conventions (camelCase,
strict fields, immutability) and wires its `cel_rules` into both validation and the schema.
The types below are Kubernetes' own (quantities, tolerations, object references, free-form
structures); they carry the bounds the API server would apply to them in a pod.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from sluice_operator.celrules import Rule, cel, matches

_QUANTITY = (
    r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)))?$"
)

Percent = Annotated[int, Field(ge=0, le=100)]


def _quantity(value: Any) -> int | str:
    """int-or-string as the API server types it: a float such as 0.5 is refused there too."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and matches(_QUANTITY, value):
        return value
    raise PydanticCustomError(
        "quantity", 'must be a quantity such as 2, "500m" or "1Gi" (quote fractions)'
    )


Quantity = Annotated[
    int | str,
    PlainValidator(_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": _QUANTITY,
            "x-kubernetes-int-or-string": True,
        }
    ),
]
"""A Kubernetes resource quantity: a whole number or a string such as `500m`, `1Gi`."""


FreeForm = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]
"""A Kubernetes structure passed through unchanged (the API server validates it in the pod)."""


def _camel(name: str) -> str:
    """camelCase, keeping the Kubernetes spelling of CPU (targetCPUUtilizationPercentage)."""
    return to_camel(name).replace("Cpu", "CPU")


class SpecModel(BaseModel):
    """Base of every resource model: camelCase on the wire, snake_case in Python, immutable.

    `extra="forbid"` mirrors kubectl's strict field validation, so a misspelt field fails in
    `sluice render` as it fails at `kubectl apply`. Subclasses list object-level rules in
    `cel_rules`; they are checked after the fields and emitted into the class's schema.
    """

    model_config = ConfigDict(
        alias_generator=_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        frozen=True,
        json_schema_extra=lambda schema, cls: cel(schema, getattr(cls, "cel_rules", ())),
    )
    cel_rules: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_cel_rules(self) -> Self:
        for rule in self.cel_rules:
            rule.enforce(self)
        return self


class Toleration(SpecModel):
    """A core/v1 Toleration for the model pods."""

    key: str | None = Field(
        default=None, max_length=316, description="Taint key; empty matches all."
    )
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists or Equal."
    )
    value: str | None = Field(default=None, max_length=63, description="Taint value for Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to tolerate; empty matches all."
    )
    toleration_seconds: int | None = Field(
        default=None, description="How long a NoExecute taint is tolerated."
    )


class LocalObjectReference(SpecModel):
    """A reference to an object in the same namespace, by name."""

    name: str = Field(min_length=1, max_length=253, description="Object name.")
