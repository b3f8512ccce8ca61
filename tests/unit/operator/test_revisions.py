"""Revision names come from content; roles and shares come from the spec."""

from __future__ import annotations

import pytest
from sluice_operator import spec
from sluice_operator.naming import revision_name
from sluice_operator.revisions import revisions_of

from tests.unit.operator.kit import isvc, model, with_canary


def test_same_content_same_name_and_any_change_a_new_one() -> None:
    base = isvc()
    again = isvc()
    name = revision_name("iris", base.spec.model, base.spec.runtime)
    assert name == revision_name("iris", again.spec.model, again.spec.runtime)
    other_version = isvc({"spec": {"model": model("2")}})
    other_runtime = isvc({"spec": {"runtime": {"batching": {"maxBatchSize": 8}}}})
    names = {
        name,
        revision_name("iris", other_version.spec.model, other_version.spec.runtime),
        revision_name("iris", other_runtime.spec.model, other_runtime.spec.runtime),
    }
    assert len(names) == 3


def test_a_field_spelled_out_at_its_default_keeps_the_name() -> None:
    implicit = isvc()
    explicit = isvc({"spec": {"runtime": {"device": "auto", "warmup": {"requests": 1}}}})
    assert revision_name("iris", implicit.spec.model, implicit.spec.runtime) == revision_name(
        "iris", explicit.spec.model, explicit.spec.runtime
    )


def test_scaling_and_pod_settings_do_not_rename_a_revision() -> None:
    base = isvc()
    moved = isvc({"spec": {"scaling": {"minReplicas": 3}, "pod": {"nodeSelector": {"a": "b"}}}})
    assert revisions_of(base)[0].name == revisions_of(moved)[0].name


def test_longest_name_fits_a_dns_label() -> None:
    long_name = "a" * spec.MAX_NAME_LENGTH
    resource = isvc({"metadata": {"name": long_name}})
    (stable,) = revisions_of(resource)
    assert stable.name.startswith(long_name + "-")
    assert len(stable.name) <= 63


def test_roles_and_shares() -> None:
    resource = isvc(
        {
            "spec": {
                "canary": {"model": model("2"), "trafficPercent": 10},
                "shadow": {"model": model("3"), "mirrorPercent": 25},
            }
        }
    )
    stable, canary, shadow = revisions_of(resource)
    assert (stable.role, stable.traffic_percent, stable.model.version) == ("stable", 90, "1")
    assert (canary.role, canary.traffic_percent, canary.model.version) == ("canary", 10, "2")
    assert (shadow.role, shadow.mirror_percent, shadow.traffic_percent) == ("shadow", 25, 0)
    assert stable.serving
    assert canary.serving
    assert not shadow.serving


def test_the_canary_revision_is_the_promoted_stable_revision() -> None:
    before = with_canary("2", 10)
    after = isvc({"spec": {"model": model("2")}})
    assert revisions_of(before)[1].name == revisions_of(after)[0].name


def test_two_roles_with_one_model_are_refused() -> None:
    resource = with_canary("2", 10)
    same = resource.model_copy(
        update={
            "spec": resource.spec.model_copy(
                update={
                    "shadow": spec.ShadowSpec(model=resource.spec.canary.model)  # type: ignore[union-attr]
                }
            )
        }
    )
    with pytest.raises(spec.SpecError, match=r"spec\.shadow\.model"):
        revisions_of(same)
