"""The InferenceService models: defaults, wire names, and the rules `sluice render` enforces."""

from __future__ import annotations

from typing import Any

import pytest
from sluice_operator.spec import (
    InferenceService,
    InferenceServiceSpec,
    ModelSpec,
    RevisionStatus,
    ScalingSpec,
    SpecError,
    parse,
)

from tests.data.isvc_cases import EXAMPLES, ROOT, InvalidCase, invalid_cases, load, merge

DIGEST = "sha256:" + "ab" * 32
BASE = load(ROOT / "examples" / "basic.yaml")


def _with(patch: dict[str, Any]) -> dict[str, Any]:
    return merge(BASE, patch)


def _problems(document: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse(document)
    return caught.value.problems


@pytest.mark.parametrize("case", invalid_cases(), ids=lambda c: c.name)
def test_invalid_manifest_is_refused_naming_the_field(case: InvalidCase) -> None:
    problems = _problems(case.manifest)
    named = [p for p in problems if p.startswith(case.field)]
    assert named, f"no problem names {case.field}: {problems}"
    if case.message is not None:
        assert any(case.message in p for p in named), problems


def test_defaults_fill_what_the_manifest_leaves_out() -> None:
    spec = parse(BASE).spec
    assert spec.runtime.device == "auto"
    assert spec.runtime.batching.max_batch_size == 0
    assert spec.runtime.batching.max_delay_microseconds == 2000
    assert spec.runtime.warmup.requests == 1
    assert spec.scaling.min_replicas == 1
    assert spec.scaling.max_replicas is None
    assert spec.scaling.replica_ceiling == 1
    assert spec.scaling.target_cpu_utilization_percentage == 80
    assert spec.canary is None
    assert spec.shadow is None
    assert spec.traffic.sticky_header is None


def test_wire_names_are_camel_case_and_python_names_snake_case() -> None:
    scaling = ScalingSpec(min_replicas=2, max_replicas=5, target_cpu_utilization_percentage=60)
    assert scaling.model_dump() == {
        "minReplicas": 2,
        "maxReplicas": 5,
        "targetCPUUtilizationPercentage": 60,
    }
    assert ScalingSpec.model_validate(scaling.model_dump()) == scaling
    assert scaling.replica_ceiling == 5


def test_a_parsed_manifest_round_trips_through_its_dump() -> None:
    for path in EXAMPLES:
        isvc = parse(load(path))
        again = InferenceService.model_validate(isvc.model_dump(exclude_none=True))
        assert again == isvc, path.name


def test_server_defaulted_manifest_parses_to_the_same_spec() -> None:
    """The API server stores defaults; the revision hash must not change because of them."""
    sparse = parse(BASE).spec
    dense = InferenceServiceSpec.model_validate(sparse.model_dump(exclude_none=True))
    assert dense == sparse


@pytest.mark.parametrize(
    "uri",
    [
        "mlflow://iris/1",
        "file:///models/iris/1",
        "pvc://models/iris/1",
        "s3://models/iris/1/model.onnx?versionId=3HL4kqtJ",
        "s3://models/iris/1/model.onnx?x=1&versionId=3HL4kqtJ",
    ],
)
def test_uris_that_pin_their_bytes_need_no_digest(uri: str) -> None:
    assert ModelSpec(name="iris", version="1", uri=uri).digest is None


@pytest.mark.parametrize(
    "uri",
    [
        "https://models.example.com/m.onnx",
        "http://127.0.0.1:9000/m.onnx",
        "s3://models/iris/1/model.onnx",
        "s3://models/iris/1/model.onnx?versionId=",
        "s3://models/iris/1/model.onnx?notversionId=x",
    ],
)
def test_mutable_uris_need_a_digest(uri: str) -> None:
    problems = _problems(_with({"spec": {"model": {"uri": uri}}}))
    assert any(p.startswith("spec.model.digest: digest is required") for p in problems)
    assert parse(_with({"spec": {"model": {"uri": uri, "digest": DIGEST}}})).spec.model.digest


def test_digest_must_be_lower_case_hex() -> None:
    problems = _problems(_with({"spec": {"model": {"digest": DIGEST.upper()}}}))
    assert problems == [
        "spec.model.digest: digest must be sha256: followed by 64 lower-case hex digits"
    ]


def test_every_problem_is_reported_at_once() -> None:
    problems = _problems(
        _with(
            {
                "spec": {
                    "model": {"version": "latest"},
                    "canary": {
                        "model": {"name": "iris", "version": "2", "uri": "mlflow://iris/2"},
                        "trafficPercent": 101,
                    },
                    "traffic": {"stickyHeader": "x user"},
                }
            }
        )
    )
    assert [p.split(":")[0] for p in problems] == [
        "spec.model.version",
        "spec.canary.trafficPercent",
        "spec.traffic.stickyHeader",
    ]


def test_promotion_shape_is_accepted() -> None:
    """Stable moved to the canary's model and the canary removed, in one commit."""
    canary = {"name": "iris", "version": "2", "uri": "mlflow://iris/2"}
    promoted = parse(_with({"spec": {"model": canary}}))
    assert promoted.spec.model.version == "2"
    assert promoted.spec.canary is None


def test_canary_may_differ_from_stable_by_digest_only() -> None:
    stable = {"uri": "https://m.example.com/iris.onnx", "digest": DIGEST}
    canary = {"name": "iris", "version": "1", **stable, "digest": "sha256:" + "cd" * 32}
    isvc = parse(
        _with({"spec": {"model": stable, "canary": {"model": canary, "trafficPercent": 5}}})
    )
    assert isvc.spec.canary is not None
    assert isvc.spec.canary.model != isvc.spec.model


def test_zero_percent_canary_and_full_shadow_are_valid_bounds() -> None:
    other = {"name": "iris", "version": "2", "uri": "mlflow://iris/2"}
    third = {"name": "iris", "version": "3", "uri": "mlflow://iris/3"}
    spec = parse(
        _with(
            {
                "spec": {
                    "canary": {"model": other, "trafficPercent": 0},
                    "shadow": {"model": third, "mirrorPercent": 100},
                }
            }
        )
    ).spec
    assert spec.canary is not None
    assert spec.canary.traffic_percent == 0
    assert spec.shadow is not None
    assert spec.shadow.mirror_percent == 100


def test_shadow_mirrors_everything_by_default() -> None:
    third = {"name": "iris", "version": "3", "uri": "mlflow://iris/3"}
    spec = parse(_with({"spec": {"shadow": {"model": third}}})).spec
    assert spec.shadow is not None
    assert spec.shadow.mirror_percent == 100


def test_resources_keep_kubernetes_quantities() -> None:
    limits = {"cpu": "500m", "memory": "1.5Gi", "nvidia.com/gpu": 1, "ephemeral-storage": "1e9"}
    spec = parse(_with({"spec": {"runtime": {"resources": {"limits": limits}}}})).spec
    assert spec.runtime.resources.limits == limits


def test_spec_models_are_immutable() -> None:
    spec = parse(BASE).spec
    with pytest.raises(ValueError, match="frozen"):
        spec.model.version = "2"  # type: ignore[misc]


def test_revision_column_shows_the_share_its_role_uses() -> None:
    stable = RevisionStatus(name="fraud-1", role="stable", version="7", traffic_percent=90)
    shadow = RevisionStatus(name="fraud-3", role="shadow", version="9", mirror_percent=100)
    assert stable.column() == "7 (90%)"
    assert shadow.column() == "9 (100%)"


def test_status_conditions_follow_metav1_condition() -> None:
    status = {
        "observedGeneration": 3,
        "url": "http://fraud.risk.svc.cluster.local",
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "lastTransitionTime": "2025-01-01T00:00:00Z",
                "reason": "CrashLoopBackOff",
                "message": "2/2 pods of fraud-1 crash-loop",
            }
        ],
    }
    parsed = parse(_with({"status": status}))
    assert parsed.status is not None
    assert parsed.status.conditions[0].reason == "CrashLoopBackOff"
    bad = {**status, "conditions": [{**status["conditions"][0], "reason": "not camel"}]}
    assert any(
        p.startswith("status.conditions[0].reason") for p in _problems(_with({"status": bad}))
    )
