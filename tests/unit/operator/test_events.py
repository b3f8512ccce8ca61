"""Events: one per transition, none for a status that did not change."""

from __future__ import annotations

from sluice_operator import spec
from sluice_operator.events import transitions


def _ready(status: str, reason: str, message: str = "m") -> spec.Condition:
    return spec.Condition(
        type="Ready",
        status=status,  # type: ignore[arg-type]
        last_transition_time="2026-01-01T00:00:00Z",
        reason=reason,
        message=message,
    )


def _status(
    ready: spec.Condition | None, *revisions: tuple[str, str]
) -> spec.InferenceServiceStatus:
    return spec.InferenceServiceStatus(
        conditions=[ready] if ready else [],
        revisions=[
            spec.RevisionStatus(name=name, role=role, version=name[-1])  # type: ignore[arg-type]
            for name, role in revisions
        ],
    )


def test_unchanged_status_sends_nothing() -> None:
    same = _status(_ready("True", "Serving"), ("iris-1", "stable"))
    assert transitions(same, same) == []


def test_becoming_ready_is_one_normal_event() -> None:
    before = _status(_ready("False", "RevisionsStarting"), ("iris-1", "stable"))
    after = _status(_ready("True", "Serving", "iris-1 100%"), ("iris-1", "stable"))
    (event,) = transitions(before, after)
    assert (event.type, event.reason, event.message) == ("Normal", "Ready", "iris-1 100%")


def test_a_failure_is_a_warning_with_its_reason() -> None:
    before = _status(_ready("True", "Serving"), ("iris-1", "stable"))
    after = _status(_ready("False", "OOMKilled", "2 pod(s)"), ("iris-1", "stable"))
    (event,) = transitions(before, after)
    assert (event.type, event.reason) == ("Warning", "OOMKilled")


def test_starting_up_is_not_worth_an_event() -> None:
    after = _status(_ready("False", "RevisionsStarting"), ("iris-1", "stable"))
    assert [e.reason for e in transitions(_status(None, ("iris-1", "stable")), after)] == []


def test_revision_lifecycle_events() -> None:
    before = _status(None, ("iris-1", "stable"), ("iris-2", "canary"))
    promoted = _status(None, ("iris-1", "draining"), ("iris-2", "stable"))
    reasons = [(e.reason, e.message) for e in transitions(before, promoted)]
    assert ("Promoted", "revision iris-2 (version 2): canary -> stable") in reasons
    assert ("RoleChanged", "revision iris-1 (version 1): stable -> draining") in reasons
    gone = _status(None, ("iris-2", "stable"), ("iris-3", "canary"))
    assert sorted(e.reason for e in transitions(promoted, gone)) == [
        "RevisionCreated",
        "RevisionDeleted",
    ]


def test_first_status_announces_its_revisions() -> None:
    after = _status(_ready("True", "Serving"), ("iris-1", "stable"))
    assert sorted(e.reason for e in transitions(None, after)) == ["Ready", "RevisionCreated"]
