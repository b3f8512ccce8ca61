"""The InferenceService resource as pydantic models: the single source of truth.

The CRD (`crd.py`) is generated from these models, so every description, default, enum and bound
written here is what the API server enforces and what `kubectl explain` shows. Rules one field
cannot express alone are `Rule`s: each carries its CEL expression (emitted into the CRD as
`x-kubernetes-validations`) and its Python twin, so `sluice render` refuses exactly the manifests
the API server refuses, with the same message, at the same field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema, model_validator

from sluice_operator.celrules import Checked, Rule, describe_errors, matches, rule_error
from sluice_operator.specbase import (
    FreeForm,
    LocalObjectReference,
    Percent,
    Quantity,
    SpecModel,
    Toleration,
)

API_GROUP = "serving.sluice.dev"
API_VERSION = "v1alpha1"
KIND = "InferenceService"
PLURAL = "inferenceservices"
SINGULAR = "inferenceservice"

MAX_NAME_LENGTH = 52
"""Room for `<name>-<hash>` revision names and `<name>-router` inside a 63-character DNS label."""

_LABEL_VALUE = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
_S3_VERSION_ID = "^s3://[^?]*[?](.*&)?versionId=[^&]+"

Role = Literal["stable", "canary", "shadow", "draining"]


def _uri_mutable(uri: str) -> bool:
    """True where the URI alone may name different bytes later, so only a digest pins it."""
    if uri.startswith(("http://", "https://")):
        return True
    return uri.startswith("s3://") and not matches(_S3_VERSION_ID, uri)


class ModelSpec(SpecModel):
    """A pinned model: where to fetch it and what its bytes must hash to."""

    cel_rules = (
        Rule(
            cel=(
                "has(self.digest) || !(self.uri.startsWith('http://') || "
                "self.uri.startsWith('https://') || (self.uri.startsWith('s3://') && "
                f"!self.uri.matches('{_S3_VERSION_ID}')))"
            ),
            message=(
                "digest is required for https://, http:// and s3:// URIs without ?versionId=, "
                "because such a URI alone can point at different bytes tomorrow"
            ),
            check=lambda m: m.digest is not None or not _uri_mutable(m.uri),
            field_path=".digest",
            reason="FieldValueRequired",
        ),
    )

    name: Annotated[
        str,
        Field(min_length=1, max_length=128),
        Checked(
            Rule.pattern(
                _LABEL_VALUE,
                "name must be letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit",
            )
        ),
    ] = Field(description="Model name served on the Open Inference Protocol (/v2/models/<name>).")
    version: Annotated[
        str,
        Field(min_length=1, max_length=63),
        Checked(
            Rule(
                cel="self.lowerAscii() != 'latest'",
                message="version must pin a version; 'latest' is refused",
                check=lambda v: v.lower() != "latest",
                reason="FieldValueForbidden",
            ),
            Rule.pattern(
                _LABEL_VALUE,
                "version must be at most 63 letters, digits, '-', '_' or '.', starting and ending "
                "with a letter or digit (it becomes the sluice.dev/model-version label)",
            ),
        ),
    ] = Field(
        description="Pinned model version, e.g. \"7\". Required; empty and 'latest' are refused."
    )
    uri: Annotated[
        str,
        Field(min_length=1, max_length=2048),
        Checked(
            Rule.pattern(
                r"^(file|pvc|http|https|s3|mlflow)://.+$",
                "uri must start with file://, pvc://, http://, https://, s3:// or mlflow://",
            )
        ),
    ] = Field(
        description=(
            "Where the runtime fetches the model: mlflow://<name>/<version>, s3://bucket/key"
            "[?versionId=...], https://..., file://... or pvc://<claim>/<path>."
        )
    )
    digest: (
        Annotated[
            str,
            Checked(
                Rule.pattern(
                    r"^sha256:[0-9a-f]{64}$",
                    "digest must be sha256: followed by 64 lower-case hex digits",
                )
            ),
            Field(max_length=71),
        ]
        | None
    ) = Field(
        default=None,
        description=(
            "sha256:<64 hex> of the model file; the runtime refuses bytes that hash otherwise. "
            "Required where the URI alone is mutable (http(s)://, s3:// without ?versionId=)."
        ),
    )


class ResourceRequirements(SpecModel):
    """Requests and limits of the runtime container, e.g. `limits: {nvidia.com/gpu: 1}`."""

    requests: dict[str, Quantity] = Field(
        default_factory=dict,
        max_length=16,
        description="Minimum resources the scheduler reserves (cpu, memory, nvidia.com/gpu, ...).",
    )
    limits: dict[str, Quantity] = Field(
        default_factory=dict,
        max_length=16,
        description="Maximum resources; GPUs are requested here, e.g. nvidia.com/gpu: 1.",
    )


class EnvVar(SpecModel):
    """An extra environment variable for the runtime container."""

    cel_rules = (
        Rule(
            cel="!(has(self.value) && has(self.valueFrom))",
            message="env entries take value or valueFrom, not both",
            check=lambda e: e.value is None or e.value_from is None,
        ),
    )

    name: str = Field(
        min_length=1,
        max_length=256,
        pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$",
        description="Variable name; unique within env.",
    )
    value: str | None = Field(default=None, description="Literal value.")
    value_from: FreeForm | None = Field(
        default=None,
        description="A core/v1 EnvVarSource (secretKeyRef, configMapKeyRef, fieldRef, ...).",
    )


class Batching(SpecModel):
    """Dynamic batching: requests arriving together run as one inference."""

    max_batch_size: int = Field(
        default=0, ge=0, le=4096, description="Largest merged batch; 0 turns batching off."
    )
    max_delay_microseconds: int = Field(
        default=2000,
        ge=0,
        le=1_000_000,
        description="Longest a request waits for others to join its batch, in microseconds.",
    )


class Warmup(SpecModel):
    """Warm-up inferences run before the pod reports ready, so no user pays the first call."""

    requests: int = Field(
        default=1,
        ge=0,
        le=10_000,
        description="Warm-up inferences built from the model's input metadata.",
    )


class RuntimeSpec(SpecModel):
    """How the runtime container runs the model (shared by stable, canary and shadow)."""

    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="Runtime image; defaults to the image the operator was installed with.",
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        default=None, description="Pull policy of the runtime image."
    )
    resources: ResourceRequirements = Field(
        default_factory=ResourceRequirements,
        description="Container resources, including GPUs such as nvidia.com/gpu.",
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=64,
        description="Extra environment variables for the runtime container.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    batching: Batching = Field(default=Batching(), description="Dynamic batching settings.")
    warmup: Warmup = Field(default=Warmup(), description="Warm-up before readiness.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto",
        description="Execution device: cuda when present (auto), or forced cpu or cuda.",
    )

    @model_validator(mode="after")
    def _unique_env(self) -> Self:
        names = [e.name for e in self.env]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise rule_error(
                f"env names must be unique; duplicated: {', '.join(duplicates)}", ".env"
            )
        return self


class ScalingSpec(SpecModel):
    """Replica bounds; a HorizontalPodAutoscaler is made when maxReplicas > minReplicas.

    The target is CPU utilization because autoscaling/v2 can act on it with only
    metrics-server; scaling on in-flight requests needs a metrics adapter (later, via KEDA).
    """

    cel_rules = (
        Rule(
            cel="!has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
            message="maxReplicas must be at least minReplicas",
            check=lambda s: s.max_replicas is None or s.min_replicas <= s.max_replicas,
            field_path=".maxReplicas",
        ),
    )

    min_replicas: int = Field(default=1, ge=1, le=1000, description="Replicas always running.")
    max_replicas: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Upper bound for autoscaling; defaults to minReplicas.",
    )
    target_cpu_utilization_percentage: int = Field(
        default=80,
        ge=1,
        le=100,
        description="Average CPU utilization (percent of requests) the autoscaler aims for.",
    )

    @property
    def replica_ceiling(self) -> int:
        """maxReplicas, or minReplicas when autoscaling is off."""
        return self.max_replicas if self.max_replicas is not None else self.min_replicas


class CanarySpec(SpecModel):
    """A second version taking a share of live traffic."""

    model: ModelSpec = Field(description="The canary model; same name, another version.")
    traffic_percent: Percent = Field(description="Share of requests routed to the canary, 0..100.")


class ShadowSpec(SpecModel):
    """A version receiving copies of requests; its answers are recorded, never returned."""

    model: ModelSpec = Field(description="The shadow model.")
    mirror_percent: Percent = Field(
        default=100, description="Share of requests copied to the shadow, 0..100."
    )


class TrafficSpec(SpecModel):
    """How requests are spread over the serving revisions."""

    sticky_header: (
        Annotated[
            str,
            Field(min_length=1, max_length=63),
            Checked(
                Rule.pattern(
                    r"^[A-Za-z0-9][A-Za-z0-9-]*$",
                    "stickyHeader must be an HTTP header name of letters, digits and '-'",
                )
            ),
        ]
        | None
    ) = Field(
        default=None,
        description="Header whose value pins a caller to one version, e.g. x-user-id.",
    )


class PodOverrides(SpecModel):
    """Pod settings a platform team needs, passed through to every revision's pods."""

    node_selector: dict[str, str] = Field(
        default_factory=dict, max_length=32, description="Node labels the pods require."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=32, description="Taints the pods tolerate."
    )
    affinity: FreeForm | None = Field(
        default=None, description="A core/v1 Affinity, passed unchanged."
    )
    service_account_name: str | None = Field(
        default=None, min_length=1, max_length=253, description="ServiceAccount the pods run as."
    )
    image_pull_secrets: list[LocalObjectReference] = Field(
        default_factory=list, max_length=16, description="Secrets for pulling the runtime image."
    )
    annotations: dict[str, str] = Field(
        default_factory=dict, max_length=64, description="Extra pod annotations."
    )
    labels: Annotated[
        dict[str, str],
        Checked(
            Rule(
                cel="self.all(k, !k.startsWith('sluice.dev/'))",
                message="pod labels may not use the sluice.dev/ prefix; the operator owns it",
                check=lambda labels: not any(k.startswith("sluice.dev/") for k in labels),
                reason="FieldValueForbidden",
            )
        ),
    ] = Field(default_factory=dict, max_length=64, description="Extra pod labels.")


def _role_model(spec: InferenceServiceSpec, role: str) -> ModelSpec | None:
    if role == "model":
        return spec.model
    held: CanarySpec | ShadowSpec | None = getattr(spec, role)
    return None if held is None else held.model


def _models_differ_cel(first: str, second: str) -> str:
    """CEL has no equality on objects: compare ModelSpec field by field (all strings)."""
    terms = []
    for field in ModelSpec.model_fields.values():
        a, b = f"{first}.{field.alias}", f"{second}.{field.alias}"
        if field.is_required():
            terms.append(f"{a} != {b}")
        else:
            terms.append(f"(has({a}) ? {a} : '') != (has({b}) ? {b} : '')")
    return " || ".join(terms)


def _differ(role: str, other: str) -> Rule:
    """Two roles naming the same model would be one revision holding two roles at once."""
    guards = "".join(f"!has(self.{r}) || " for r in (role, other) if r != "model")
    other_path = "model" if other == "model" else f"{other}.model"
    return Rule(
        cel=f"{guards}{_models_differ_cel(f'self.{role}.model', f'self.{other_path}')}",
        message=f"{role}.model must differ from {other_path}",
        check=lambda s: (
            _role_model(s, role) is None
            or _role_model(s, other) is None
            or _role_model(s, role) != _role_model(s, other)
        ),
        field_path=f".{role}.model",
    )


class InferenceServiceSpec(SpecModel):
    """What to serve and how traffic reaches it."""

    cel_rules = (
        Rule(
            cel="!has(self.canary) || self.canary.model.name == self.model.name",
            message=(
                "canary.model.name must equal model.name: callers address one model endpoint "
                "and the router splits it between versions"
            ),
            check=lambda s: s.canary is None or s.canary.model.name == s.model.name,
            field_path=".canary.model.name",
        ),
        _differ("canary", "model"),
        _differ("shadow", "model"),
        _differ("shadow", "canary"),
    )

    model: ModelSpec = Field(description="The stable model: what serves the main traffic.")
    runtime: RuntimeSpec = Field(
        default=RuntimeSpec(), description="Runtime container settings shared by all versions."
    )
    scaling: ScalingSpec = Field(default=ScalingSpec(), description="Replicas per revision.")
    canary: CanarySpec | None = Field(
        default=None, description="A version taking a share of live traffic."
    )
    shadow: ShadowSpec | None = Field(
        default=None, description="A version receiving copies of traffic; its answers are dropped."
    )
    traffic: TrafficSpec = Field(default=TrafficSpec(), description="Traffic options.")
    pod: PodOverrides = Field(
        default=PodOverrides(), description="Scheduling and metadata for the model pods."
    )


class Condition(SpecModel):
    """A metav1.Condition: the standard shape tools such as kubectl wait and Argo CD read."""

    type: str = Field(
        min_length=1,
        max_length=316,
        description="Ready, ModelsReady, TrafficReady, Progressing or Degraded.",
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation this condition was computed from."
    )
    last_transition_time: str = Field(
        description="When status last changed (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="CamelCase machine-readable cause, e.g. ImagePullBackOff or DigestMismatch.",
    )
    message: str = Field(max_length=32768, description="Human-readable detail.")


class RevisionStatus(SpecModel):
    """One revision (a Deployment and Service named by content) and its share of traffic."""

    name: str = Field(min_length=1, max_length=63, description="Deployment and Service name.")
    role: Role = Field(
        description="stable, canary, shadow, or draining (no role; removed once idle)."
    )
    version: str = Field(description="Model version the revision serves.")
    digest: str | None = Field(
        default=None, description="Pinned model digest, when the spec gives one."
    )
    ready_replicas: int = Field(default=0, ge=0, description="Pods passing readiness.")
    replicas: int = Field(default=0, ge=0, description="Pods desired.")
    traffic_percent: Percent = Field(default=0, description="Share of live requests it answers.")
    mirror_percent: Percent = Field(
        default=0, description="Share of requests copied to it (shadow)."
    )

    def column(self) -> str:
        """`7 (90%)`: the printer-column text for this revision's role."""
        share = self.mirror_percent if self.role == "shadow" else self.traffic_percent
        return f"{self.version} ({share}%)"


class InferenceServiceStatus(SpecModel):
    """What the operator observed, recomputed from the cluster on every reconciliation."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the status describes."
    )
    url: str | None = Field(default=None, description="In-cluster address callers use.")
    stable: str | None = Field(
        default=None,
        description="Stable version and traffic share, e.g. '7 (90%)' (printer column).",
    )
    canary: str | None = Field(
        default=None,
        description="Canary version and traffic share, e.g. '8 (10%)' (printer column).",
    )
    shadow: str | None = Field(
        default=None,
        description="Shadow version and mirror share, e.g. '9 (100%)' (printer column).",
    )
    revisions: list[RevisionStatus] = Field(
        default_factory=list,
        description="Every revision that exists, with role, readiness and traffic.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, ModelsReady, TrafficReady, Progressing, Degraded.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


_NAME = Rule(
    cel=(f"size(self) <= {MAX_NAME_LENGTH} && self.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')"),
    message=(
        f"metadata.name must be at most {MAX_NAME_LENGTH} lower-case letters, digits and '-', "
        "starting with a letter: it names Services and <name>-<hash> revisions"
    ),
    check=lambda name: (
        len(name) <= MAX_NAME_LENGTH and matches("^[a-z]([-a-z0-9]*[a-z0-9])?$", name)
    ),
)
_METADATA_SCHEMA = {
    # The API server allows a CRD to constrain only name and generateName, without descriptions.
    "type": "object",
    "properties": {"name": {"type": "string", "x-kubernetes-validations": [_NAME.schema()]}},
}


class ObjectMeta(BaseModel):
    """The metadata fields Sluice reads; the rest passes through."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: Annotated[str, Checked(_NAME)]
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int | None = None
    uid: str | None = None


class InferenceService(SpecModel):
    """A model served behind one address, with optional canary and shadow versions."""

    api_version: Annotated[
        Literal["serving.sluice.dev/v1alpha1"], WithJsonSchema({"type": "string"})
    ] = Field(description="serving.sluice.dev/v1alpha1")
    kind: Annotated[Literal["InferenceService"], WithJsonSchema({"type": "string"})] = Field(
        description="InferenceService"
    )
    metadata: Annotated[ObjectMeta, WithJsonSchema(_METADATA_SCHEMA)]
    spec: InferenceServiceSpec = Field(description="What to serve and how traffic reaches it.")
    status: InferenceServiceStatus | None = Field(
        default=None, description="Written by the operator; never set it by hand."
    )


class SpecError(ValueError):
    """A manifest the API server would refuse; `problems` are `path: message` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse(document: Any) -> InferenceService:
    """Validate a manifest (a parsed YAML mapping) as the API server would, or raise SpecError."""
    try:
        return InferenceService.model_validate(document)
    except ValidationError as error:
        raise SpecError(describe_errors(error)) from None
