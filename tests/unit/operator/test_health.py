"""Pod failures as the kubelet and scheduler report them, classified over every pod."""

from __future__ import annotations

from typing import Any

import pytest
from sluice_operator.health import pod_problem, problems, summarize

from tests.unit.operator.kit import pod

RUNNING = {
    "phase": "Running",
    "conditions": [{"type": "Ready", "status": "True"}],
    "containerStatuses": [{"name": "runtime", "ready": True, "state": {"running": {}}}],
}


def _init(state: dict[str, Any], last: dict[str, Any] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"name": "fetch", "state": state}
    if last:
        status["lastState"] = {"terminated": last}
    return {"phase": "Pending", "initContainerStatuses": [status]}


def _main(state: dict[str, Any], last: dict[str, Any] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"name": "runtime", "state": state}
    if last:
        status["lastState"] = {"terminated": last}
    return {"phase": "Running", "containerStatuses": [status]}


DIGEST_MISMATCH = {"exitCode": 3, "reason": "Error", "message": "digest mismatch: got sha256:00"}

CASES = [
    (
        {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
                }
            ],
        },
        "Unschedulable",
        "Insufficient nvidia.com/gpu",
    ),
    (_init({"terminated": DIGEST_MISMATCH}), "ModelFetchFailed", "digest mismatch"),
    (
        _init({"waiting": {"reason": "CrashLoopBackOff"}}, DIGEST_MISMATCH),
        "ModelFetchFailed",
        "exit code 3: digest mismatch",
    ),
    (
        _init(
            {"waiting": {"reason": "CrashLoopBackOff"}}, {"exitCode": 137, "reason": "OOMKilled"}
        ),
        "OOMKilled",
        "init container fetch",
    ),
    (_main({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}), "OOMKilled", "memory"),
    (
        _main(
            {"waiting": {"reason": "CrashLoopBackOff"}}, {"exitCode": 137, "reason": "OOMKilled"}
        ),
        "OOMKilled",
        "OOM",
    ),
    (
        _main(
            {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
            {"exitCode": 1, "reason": "Error", "message": "model failed to load"},
        ),
        "CrashLoopBackOff",
        "exit code 1: model failed to load",
    ),
    (
        _main({"waiting": {"reason": "ImagePullBackOff", "message": "not found"}}),
        "ImagePullFailed",
        "not found",
    ),
    (
        _init({"waiting": {"reason": "ErrImagePull", "message": "denied"}}),
        "ImagePullFailed",
        "denied",
    ),
    (
        _main({"waiting": {"reason": "CreateContainerConfigError", "message": "secret x"}}),
        "ContainerConfigError",
        "secret x",
    ),
]


@pytest.mark.parametrize(("status", "reason", "fragment"), CASES)
def test_each_failure_is_named(status: dict[str, Any], reason: str, fragment: str) -> None:
    found = pod_problem(pod("iris-a", "p1", status))
    assert found is not None
    assert (found.revision, found.pod, found.reason) == ("iris-a", "p1", reason)
    assert fragment in found.message


@pytest.mark.parametrize(
    "status",
    [
        RUNNING,
        _main({"running": {}}, {"exitCode": 137, "reason": "OOMKilled"}),  # recovered
        _init({"running": {}}),  # still fetching
        _init({"terminated": {"exitCode": 0, "reason": "Completed"}}),
        {"phase": "Pending"},
        _main({"waiting": {"reason": "ContainerCreating"}}),
    ],
)
def test_healthy_or_progressing_pods_are_not_failures(status: dict[str, Any]) -> None:
    assert pod_problem(pod("iris-a", "p1", status)) is None


def test_terminating_pods_are_not_judged() -> None:
    failing = _main({"terminated": {"exitCode": 137, "reason": "OOMKilled"}})
    assert (
        pod_problem(pod("iris-a", "p", failing, deletionTimestamp="2026-01-01T00:00:00Z")) is None
    )


def test_every_pod_counts_not_just_the_first() -> None:
    crash = _main({"waiting": {"reason": "CrashLoopBackOff"}}, {"exitCode": 1, "message": "boom"})
    pods = [
        pod("iris-a", "a1", RUNNING),
        pod("iris-a", "a2", crash),
        pod("iris-a", "a3", crash),
        pod("iris-b", "b1", _init({"terminated": DIGEST_MISMATCH})),
        pod("iris-gone", "g1", crash),
    ]
    found = problems(pods, ["iris-a", "iris-b"])
    assert sorted(p.pod for p in found) == ["a2", "a3", "b1"]
    summary = summarize(found, {"iris-a": "iris-a (stable, version 1)"})
    assert summary is not None
    reason, message = summary
    assert reason == "ModelFetchFailed"
    assert "iris-a (stable, version 1): 2 pod(s) CrashLoopBackOff: exit code 1: boom" in message
    assert "iris-b: 1 pod(s) ModelFetchFailed" in message
    assert message.index("ModelFetchFailed") < message.index("CrashLoopBackOff")


def test_no_failures_no_summary() -> None:
    assert summarize([], {}) is None


def test_long_messages_are_cut() -> None:
    long = _init({"terminated": {"exitCode": 1, "message": "x" * 5000}})
    found = pod_problem(pod("iris-a", "p", long))
    assert found is not None
    assert len(found.message) <= 300
