"""Desired state against live state: traffic moves only onto revisions that can take it."""

from __future__ import annotations

from sluice_operator.desired import Desired
from sluice_operator.live import LiveState
from sluice_operator.naming import LABEL_COMPONENT, LABEL_REVISION, Manifest, router_name

from tests.unit.operator.kit import build, find, isvc, live_of, model, with_canary


def _selector(result: Desired) -> dict[str, str]:
    selector: dict[str, str] = find(result.objects, "Service", "iris")["spec"]["selector"]
    return selector


def test_rendering_without_a_cluster_follows_the_spec() -> None:
    result = build(with_canary("2", 10))
    assert result.entry is None
    assert result.traffic == result.wanted
    assert _selector(result)[LABEL_COMPONENT] == "router"
    assert find(result.objects, "ConfigMap", router_name("iris"))


def test_first_creation_routes_at_once() -> None:
    result = build(with_canary("2", 10), LiveState())
    assert result.traffic == result.wanted
    assert result.entry is None


def _of_revision(result: Desired, name: str) -> list[Manifest]:
    return [o for o in result.objects if o["metadata"]["labels"].get(LABEL_REVISION) == name]


def test_a_canary_gets_traffic_only_once_available() -> None:
    stable = build(isvc())
    canary_spec = with_canary("2", 10)
    canary_name = build(canary_spec).revisions[1].name
    canary_objects = _of_revision(build(canary_spec), canary_name)

    starting = build(canary_spec, live_of([*stable.objects, *canary_objects], {canary_name}))
    assert starting.entry == stable.revisions[0].name
    assert not starting.traffic.via_router
    assert not [o for o in starting.objects if o["kind"] == "ConfigMap"]
    assert find(starting.objects, "Deployment", canary_name)

    both_up = build(canary_spec, live_of([*stable.objects, *canary_objects]))
    assert both_up.traffic == both_up.wanted


def test_the_service_moves_to_the_router_only_once_router_pods_are_available() -> None:
    canary_spec = with_canary("2", 10)
    stable_first = build(isvc())
    wanted = build(canary_spec)
    without_entry = [o for o in wanted.objects if o["metadata"]["name"] != "iris"]
    router_down = live_of([*stable_first.objects, *without_entry], {router_name("iris")})
    held = build(canary_spec, router_down)
    assert held.traffic.via_router
    assert held.entry == stable_first.revisions[0].name
    assert _selector(held)[LABEL_REVISION] == stable_first.revisions[0].name
    assert find(held.objects, "Deployment", router_name("iris"))

    router_up = live_of([*stable_first.objects, *without_entry])
    moved = build(canary_spec, router_up)
    assert moved.entry is None
    assert _selector(moved)[LABEL_COMPONENT] == "router"


def test_a_new_stable_takes_over_only_once_available() -> None:
    old = build(isvc())
    new_spec = isvc({"spec": {"model": model("2")}})
    new_name = build(new_spec).revisions[0].name
    new_objects = _of_revision(build(new_spec), new_name)
    live = live_of([*old.objects, *new_objects], {new_name})
    result = build(new_spec, live)
    assert result.entry == old.revisions[0].name
    assert result.applied.percent(old.revisions[0].name) == 100
    assert result.applied.percent(new_name) == 0
    assert old.revisions[0].name not in {o["metadata"]["name"] for o in result.objects}

    ready = live_of([*old.objects, *new_objects])
    assert build(new_spec, ready).entry == new_name


def test_promotion_points_the_service_at_the_canary_revision_directly() -> None:
    canary_spec = with_canary("2", 10)
    running = live_of(list(build(canary_spec).objects))
    promoted = build(isvc({"spec": {"model": model("2")}}), running)
    canary_name = build(canary_spec).revisions[1].name
    assert promoted.entry == canary_name
    assert promoted.revisions[0].name == canary_name
    assert not promoted.traffic.via_router


def test_raising_the_canary_share_keeps_the_revision_order() -> None:
    ten = build(with_canary("2", 10))
    fifty = build(with_canary("2", 50), live_of(list(ten.objects)))
    assert [name for name, _ in fifty.traffic.weights] == [name for name, _ in ten.traffic.weights]
    assert dict(fifty.traffic.weights)[ten.revisions[1].name] == 50


def test_an_autoscaled_revision_counts_as_available_only_at_its_min_replicas() -> None:
    old = build(isvc())
    scaling = {"minReplicas": 2, "maxReplicas": 5}
    new_spec = isvc({"spec": {"model": model("2"), "scaling": scaling}})
    new_name = build(new_spec).revisions[0].name
    live = live_of([*old.objects, *_of_revision(build(new_spec), new_name)])
    deployment = live.revision_deployments()[new_name]
    assert "replicas" not in _of_revision(build(new_spec), new_name)[0]["spec"]
    assert deployment["spec"]["replicas"] == 1  # defaulted; the HPA has not scaled it yet
    assert build(new_spec, live).entry == old.revisions[0].name
    deployment["spec"]["replicas"] = 2
    deployment["status"].update(replicas=2, updatedReplicas=2, readyReplicas=2, availableReplicas=2)
    assert build(new_spec, live).entry == new_name
