"""The operator benchmarks' floor: the objects it applies, and how the page reports it."""

from __future__ import annotations

from collections import Counter

from bench.operator_cluster import LABEL_ISVC, NAMESPACE, mix
from bench.operator_floor import floor_objects
from bench.operator_scale_report import FloorRun, ScaleRun, ServiceCosts, render


def test_the_floor_applies_what_the_mix_of_inferenceservices_becomes() -> None:
    objects = floor_objects(20)
    assert Counter(mix(i) for i in range(20)) == {"plain": 14, "canary": 3, "shadow": 3}
    # A plain one: its revision's Deployment and the <isvc> Service. A canary: two revisions
    # and the router (Deployment, ConfigMap, PodDisruptionBudget), the <isvc> Service on the
    # router and a Service per revision it sends to. A shadow: two revisions, the <isvc>
    # Service and the shadow revision's own (the serving pods copy requests to it by name).
    assert Counter(o["kind"] for o in objects) == {
        "Deployment": 14 + 3 * 3 + 3 * 2,
        "Service": 14 + 3 * 3 + 3 * 2,
        "ConfigMap": 3,
        "PodDisruptionBudget": 3,
    }
    names = {o["metadata"]["name"] for o in objects if o["kind"] == "Service"}
    assert {f"bench-{i:04d}" for i in range(20)} <= names
    for obj in objects:
        meta = obj["metadata"]
        assert meta["namespace"] == NAMESPACE
        # No InferenceService exists to own them (an owner without a uid is refused).
        assert "ownerReferences" not in meta
    owners = [o["metadata"]["labels"][LABEL_ISVC] for o in objects]
    assert owners == sorted(owners), "each InferenceService's objects are applied together"


def _floor(available: int) -> FloorRun:
    return FloorRun(
        count=1000,
        objects={"Deployment": 1450, "Service": 1450},
        apply_seconds=80.0,
        available_seconds=12.5,
        available=available,
        services=ServiceCosts(1450, 1450 * 2.0, 1450, 1450 * 0.05),
    )


def test_the_floor_counts_from_the_first_apply_and_says_when_not_all_became_available() -> None:
    done = _floor(1450)
    assert done.total_seconds == 92.5
    assert "1,450 Deployments, 1,450 Services applied in 80.0 s" in done.text()
    assert "all available 12.5 s later, 92.5 s from the first apply" in done.text()
    assert "only 1,200 of 1,450 available" in _floor(1200).text()


def test_the_page_sets_the_operator_against_the_floor_from_first_write_to_done() -> None:
    run = ScaleRun(count=1000, resync_period=30.0, create_seconds=13.6, ready_seconds=107.3)
    run.ready_count = 1000
    assert "control plane alone" not in render(run)
    run.floor = _floor(1450)
    page = render(run)
    assert "| control plane alone: 1,450 Deployments available | 92.5 s | 80.0 s |" in page
    assert "| with the operator: 1,000 InferenceServices Ready | 120.9 s | 13.6 s" in page
    assert "1.31x the control plane's own" in page
    assert "107.3 s (the control plane alone takes 92.5 s from the first write" in page
