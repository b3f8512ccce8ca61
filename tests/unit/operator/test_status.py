"""Status from live objects: conditions, revisions, shares, transition times."""

from __future__ import annotations

from datetime import UTC, datetime

from sluice_operator import spec, status
from sluice_operator.live import LiveState
from sluice_operator.plan import make_plan

from tests.unit.operator.kit import (
    SETTINGS,
    UID,
    build,
    isvc,
    model,
    pod,
    settle,
    with_canary,
)

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 12, 5, 0, tzinfo=UTC)


def _converged(resource: spec.InferenceService, live: LiveState | None = None) -> LiveState:
    live = live or LiveState()
    for _ in range(6):
        plan = make_plan(build(resource, live), live, "iris", UID)
        if plan.empty:
            return live
        live = settle(plan, live)
    raise AssertionError("no fixed point")


def _status(
    resource: spec.InferenceService,
    live: LiveState,
    now: datetime = T0,
    previous: spec.InferenceServiceStatus | None = None,
    converged: bool = True,
) -> spec.InferenceServiceStatus:
    observation = status.Observation(
        isvc=resource,
        desired=build(resource, live),
        live=live,
        converged=converged,
        now=now,
        previous=previous,
    )
    return status.compute(observation, SETTINGS)


def _conditions(result: spec.InferenceServiceStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in result.conditions}


def _with_pods(live: LiveState, pods: list[dict[str, object]]) -> LiveState:
    return LiveState(objects=live.objects, pods=tuple(pods))


def test_everything_available_is_ready() -> None:
    resource = with_canary("2", 10, shadow={"model": model("3"), "mirrorPercent": 50})
    result = _status(resource, _converged(resource))
    assert _conditions(result) == {
        "Ready": ("True", "Serving"),
        "ModelsReady": ("True", "RevisionsAvailable"),
        "TrafficReady": ("True", "TrafficRouted"),
        "Progressing": ("False", "Complete"),
        "Degraded": ("False", "NoFailures"),
    }
    assert result.observed_generation == 1
    assert result.url == "http://iris.risk.svc.cluster.local"
    assert (result.stable, result.canary, result.shadow) == ("1 (90%)", "2 (10%)", "3 (50%)")
    shares = {(r.role, r.version): (r.traffic_percent, r.mirror_percent) for r in result.revisions}
    assert shares == {("stable", "1"): (90, 0), ("canary", "2"): (10, 0), ("shadow", "3"): (0, 50)}
    assert all(c.observed_generation == 1 for c in result.conditions)


def test_replica_counts_come_from_the_deployments() -> None:
    resource = isvc({"spec": {"scaling": {"minReplicas": 3}}})
    live = _converged(resource)
    deployment = next(iter(live.revision_deployments().values()))
    deployment["status"]["readyReplicas"] = 2
    (entry,) = _status(resource, live).revisions
    assert (entry.replicas, entry.ready_replicas) == (3, 2)


def test_a_crash_looping_canary_makes_ready_false_with_the_reason() -> None:
    resource = with_canary("2", 10)
    live = _converged(resource)
    canary = build(resource).revisions[1].name
    crash = {
        "phase": "Running",
        "containerStatuses": [
            {
                "name": "runtime",
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "message": "bad model"}},
            }
        ],
    }
    live = _with_pods(live, [pod(canary, "c1", crash), pod(canary, "c2", crash)])
    result = _status(resource, live)
    ready = next(c for c in result.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "CrashLoopBackOff")
    assert f"{canary} (canary, version 2): 2 pod(s) CrashLoopBackOff" in ready.message
    assert _conditions(result)["Degraded"] == ("True", "CrashLoopBackOff")
    assert _conditions(result)["Progressing"] == ("False", "Stalled")
    assert _conditions(result)["ModelsReady"] == ("False", "CrashLoopBackOff")


def test_a_digest_failure_is_reported_while_the_old_stable_keeps_serving() -> None:
    old = isvc()
    live = _converged(old)
    new = isvc({"spec": {"model": model("2")}})
    new_name = build(new).revisions[0].name
    plan = make_plan(build(new, live), live, "iris", UID)
    live = settle(plan, live, unavailable={new_name})
    failed = {
        "phase": "Pending",
        "initContainerStatuses": [
            {
                "name": "fetch",
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 2, "message": "digest mismatch"}},
            }
        ],
    }
    live = _with_pods(live, [pod(new_name, "n1", failed)])
    result = _status(new, live)
    conditions = _conditions(result)
    assert conditions["Ready"] == ("False", "ModelFetchFailed")
    assert conditions["TrafficReady"] == ("False", "WaitingForRevisions")
    roles = {r.role: (r.version, r.traffic_percent) for r in result.revisions}
    assert roles == {"stable": ("2", 0), "draining": ("1", 100)}
    assert result.stable == "2 (0%)"


def test_unschedulable_gpu_pods_say_so() -> None:
    resource = isvc({"spec": {"runtime": {"resources": {"limits": {"nvidia.com/gpu": 1}}}}})
    name = build(resource).revisions[0].name
    live = LiveState.of([])
    pending = {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/2 nodes are available: 2 Insufficient nvidia.com/gpu.",
            }
        ],
    }
    live = _with_pods(live, [pod(name, "g1", pending)])
    ready = next(c for c in _status(resource, live).conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "Unschedulable")
    assert "Insufficient nvidia.com/gpu" in ready.message


def test_starting_revisions_are_progressing_not_degraded() -> None:
    resource = isvc()
    live = LiveState.of([])
    conditions = _conditions(_status(resource, live, converged=False))
    assert conditions["Ready"] == ("False", "RevisionsStarting")
    assert conditions["Progressing"] == ("True", "RollingOut")
    assert conditions["Degraded"] == ("False", "NoFailures")


def test_router_not_yet_serving_the_split_is_not_traffic_ready() -> None:
    resource = with_canary("2", 10)
    live = _converged(resource)
    router = live.router_deployment()
    assert router is not None
    router["status"]["updatedReplicas"] = 0
    assert _conditions(_status(resource, live))["TrafficReady"] == ("False", "RouterRollingOut")


def test_draining_revisions_keep_progressing_true() -> None:
    canary_spec = with_canary("2", 10)
    live = _converged(canary_spec)
    promoted = isvc({"spec": {"model": model("2")}})
    plan = make_plan(build(promoted, live), live, "iris", UID)
    live = settle(plan, live)
    result = _status(promoted, live)
    assert _conditions(result)["Progressing"] == ("True", "Draining")
    assert _conditions(result)["Ready"] == ("True", "Serving")
    draining = [r for r in result.revisions if r.role == "draining"]
    assert [(r.version, r.traffic_percent) for r in draining] == [("1", 0)]


def test_transition_time_kept_while_status_holds_and_moved_when_it_flips() -> None:
    resource = isvc()
    live = _converged(resource)
    first = _status(resource, live, now=T0)
    again = _status(resource, live, now=T1, previous=first)
    assert again == first
    broken = _with_pods(
        live,
        [
            pod(
                build(resource).revisions[0].name,
                "p",
                {
                    "conditions": [],
                    "containerStatuses": [
                        {
                            "name": "runtime",
                            "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
                        }
                    ],
                },
            )
        ],
    )
    flipped = _status(resource, broken, now=T1, previous=first)
    times = {c.type: c.last_transition_time for c in flipped.conditions}
    assert times["Ready"] == "2026-01-01T12:05:00Z"
    assert times["Degraded"] == "2026-01-01T12:05:00Z"
    assert times["TrafficReady"] == "2026-01-01T12:00:00Z"


def test_invalid_spec_status_keeps_what_was_known() -> None:
    resource = isvc()
    known = _status(resource, _converged(resource))
    result = status.invalid_spec(4, known, "spec.model.version: refused", T1)
    assert result.observed_generation == 4
    assert result.revisions == known.revisions
    ready = next(c for c in result.conditions if c.type == "Ready")
    assert (ready.status, ready.reason, ready.message) == (
        "False",
        "InvalidSpec",
        "spec.model.version: refused",
    )
