"""The plan: nothing when nothing changed, and revisions deleted only after traffic left them."""

from __future__ import annotations

import copy

from sluice_operator import spec
from sluice_operator.live import LiveState
from sluice_operator.naming import LABEL_REVISION, LABEL_ROLE, router_name
from sluice_operator.plan import Plan, make_plan
from sluice_operator.traffic import live_traffic, router_traffic

from tests.unit.operator.kit import UID, build, isvc, live_of, model, settle, with_canary


def _plan(resource: spec.InferenceService, live: LiveState) -> Plan:
    return make_plan(build(resource, live), live, "iris", UID)


def _converge(
    resource: spec.InferenceService, live: LiveState, unavailable: frozenset[str] = frozenset()
) -> tuple[LiveState, list[Plan]]:
    """Run passes until one has nothing to write, checking the deletion rule on each."""
    plans: list[Plan] = []
    for _ in range(6):
        plan = _plan(resource, live)
        if plan.empty:
            return live, plans
        reachable, by_name = _reachable(live), _routed_by_name(live)
        for ref in plan.delete:
            # The entry Service reaches a revision's pods without the revision's own Service.
            assert ref.kind == "Service" or ref.name not in reachable, (
                f"{ref.name} deleted while traffic reaches it"
            )
            assert ref.name not in by_name, f"{ref.kind} {ref.name} deleted while routed to"
        plans.append(plan)
        live = settle(plan, live, unavailable)
    raise AssertionError(f"no fixed point: {plans[-1]}")


def _reachable(live: LiveState) -> set[str]:
    traffic = live_traffic(live.get("Service", "iris"), live.get("ConfigMap", router_name("iris")))
    return set(traffic.targets) if traffic else set()


def _routed_by_name(live: LiveState) -> set[str]:
    """Revisions a live router sends to through their own Services."""
    if live.router_deployment() is None:
        return set()
    routed = router_traffic(live.get("ConfigMap", router_name("iris")))
    return set(routed.targets) if routed else set()


def _names(live: LiveState, kind: str) -> set[str]:
    return set(live.objects.get(kind, {}))


def test_nothing_to_write_when_live_matches() -> None:
    resource = with_canary("2", 10, shadow={"model": model("3")}, scaling={"minReplicas": 2})
    live = live_of(list(build(resource).objects))
    assert _plan(resource, live).empty


def test_server_defaults_and_other_writers_cause_no_write() -> None:
    resource = isvc({"spec": {"scaling": {"minReplicas": 2, "maxReplicas": 5}}})
    live = live_of(list(build(resource).objects))
    deployment = live.revision_deployments()[build(resource).revisions[0].name]
    deployment["spec"]["replicas"] = 4  # the HPA scaled it
    deployment["spec"]["progressDeadlineSeconds"] = 600  # an API server default
    deployment["metadata"]["labels"]["team"] = "risk"  # someone else's label
    assert _plan(resource, live).empty


def test_a_changed_spec_applies_only_what_changed() -> None:
    before = isvc()
    live = live_of(list(build(before).objects))
    after = isvc({"spec": {"runtime": {"warmup": {"requests": 8}}}})
    plan = _plan(after, live)
    kinds = sorted(o["kind"] for o in plan.apply)
    new_revision = build(after).revisions[0].name
    assert kinds == ["Deployment"]  # the Service moves to it once its pods are up
    assert {o["metadata"]["name"] for o in plan.apply} == {new_revision}
    assert not plan.delete


def test_a_role_label_set_elsewhere_is_put_back() -> None:
    resource = isvc()
    live = live_of(list(build(resource).objects))
    deployment = live.revision_deployments()[build(resource).revisions[0].name]
    deployment["metadata"]["labels"][LABEL_ROLE] = "draining"
    plan = _plan(resource, live)
    assert [o["kind"] for o in plan.apply] == ["Deployment"]


def test_promotion_keeps_the_canary_deployment_and_deletes_the_old_stable_last() -> None:
    canary_spec = with_canary("2", 10)
    old_stable, canary = (r.name for r in build(canary_spec).revisions)
    live, _ = _converge(canary_spec, LiveState())
    assert _reachable(live) == {old_stable, canary}
    uid_before = live.get("Deployment", canary)["metadata"]["uid"]  # type: ignore[index]

    promoted = isvc({"spec": {"model": model("2")}})
    live, plans = _converge(promoted, live)
    switch, router_gone, stable_gone = plans
    assert not switch.delete, "nothing is deleted in the pass that moves traffic"
    assert {o["metadata"]["name"] for o in switch.apply} >= {"iris", canary}
    assert {r.name for r in switch.drain} == {old_stable}
    # The router still holds the old split until it is gone, so the old stable goes after it,
    # and so does the new stable's own Service, which the router sent to by name.
    assert {r.name for r in router_gone.delete} == {router_name("iris")}
    assert {(r.kind, r.name) for r in stable_gone.delete} == {
        ("Deployment", old_stable),
        ("Service", old_stable),
        ("Service", canary),
    }
    assert _names(live, "Service") == {"iris"}
    assert _names(live, "Deployment") == {canary}
    assert live.get("Deployment", canary)["metadata"]["uid"] == uid_before  # type: ignore[index]
    assert live.get("Deployment", canary)["metadata"]["labels"][LABEL_ROLE] == "stable"  # type: ignore[index]
    assert _names(live, "ConfigMap") == set()


def test_a_new_stable_that_never_becomes_available_keeps_the_old_one_serving() -> None:
    old = build(isvc())
    live = live_of(list(old.objects))
    new_spec = isvc({"spec": {"model": model("2")}})
    new_name = build(new_spec).revisions[0].name
    live, _ = _converge(new_spec, live, unavailable=frozenset({new_name}))
    assert _reachable(live) == {old.revisions[0].name}
    assert live.get("Deployment", old.revisions[0].name) is not None
    assert live.get("Deployment", new_name) is not None


def test_a_router_mid_rollout_blocks_every_deletion() -> None:
    canary_spec = with_canary("2", 10)
    live, _ = _converge(canary_spec, LiveState())
    router = live.get("Deployment", router_name("iris"))
    assert router is not None
    router["status"]["updatedReplicas"] = 1  # one old router pod still runs the old config
    router["status"]["replicas"] = 3
    other = with_canary("3", 10)
    plan = _plan(other, live)
    assert not plan.delete
    assert build(canary_spec).revisions[1].name in {r.name for r in plan.drain}


def test_router_removed_once_the_service_no_longer_selects_it() -> None:
    canary_spec = with_canary("2", 10)
    live, _ = _converge(canary_spec, LiveState())
    back = isvc()
    first = _plan(back, live)
    assert not [r for r in first.delete if r.name == router_name("iris")]
    live, _ = _converge(back, settle(first, live))
    assert _names(live, "Deployment") == {build(back).revisions[0].name}
    assert _names(live, "PodDisruptionBudget") == set()


def test_a_shadow_stays_while_a_template_still_mirrors_to_it() -> None:
    shadow_spec = isvc({"spec": {"shadow": {"model": model("3")}}})
    live, _ = _converge(shadow_spec, LiveState())
    shadow = build(shadow_spec).revisions[1].name
    first = _plan(isvc(), live)
    assert shadow not in {r.name for r in first.delete}
    assert shadow in {r.name for r in first.drain}
    live, _ = _converge(isvc(), settle(first, live))
    assert live.get("Deployment", shadow) is None


def test_objects_of_another_owner_are_never_deleted() -> None:
    resource = isvc()
    live = live_of(list(build(resource).objects))
    stranger = copy.deepcopy(live.get("Service", "iris"))
    assert stranger is not None
    stranger["metadata"]["name"] = "iris-handmade"
    stranger["metadata"]["labels"][LABEL_REVISION] = "iris-handmade"
    stranger["metadata"]["ownerReferences"] = [{"uid": "someone-else"}]
    live = LiveState.of([*live.all(), stranger])
    assert _plan(resource, live).empty


def test_scaling_down_to_one_replica_deletes_hpa_and_pdb() -> None:
    scaled = isvc({"spec": {"scaling": {"minReplicas": 2, "maxReplicas": 4}}})
    live = live_of(list(build(scaled).objects))
    plan = _plan(isvc(), live)
    assert sorted(r.kind for r in plan.delete) == ["HorizontalPodAutoscaler", "PodDisruptionBudget"]
    assert [o["kind"] for o in plan.apply] == ["Deployment"]
