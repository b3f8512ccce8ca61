"""Kubernetes Events worth telling a user: transitions between two statuses, never repeats."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sluice_operator import spec
from sluice_operator.health import REASONS


@dataclass(frozen=True)
class Event:
    """One Event on the InferenceService."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


def transitions(
    before: spec.InferenceServiceStatus | None, after: spec.InferenceServiceStatus
) -> list[Event]:
    """Ready flips (and failures appearing), revisions created, promoted, drained, deleted."""
    events = _ready_events(before, after)
    old = {r.name: r for r in (before.revisions if before else [])}
    new = {r.name: r for r in after.revisions}
    for name, revision in new.items():
        previous = old.get(name)
        what = f"revision {name} (version {revision.version})"
        if previous is None:
            events.append(Event("Normal", "RevisionCreated", f"{what} created as {revision.role}"))
        elif previous.role != revision.role:
            reason = "Promoted" if revision.role == "stable" else "RoleChanged"
            message = f"{what}: {previous.role} -> {revision.role}"
            events.append(Event("Normal", reason, message))
    for name, revision in old.items():
        if name not in new:
            message = f"revision {name} (version {revision.version}) deleted: no traffic left"
            events.append(Event("Normal", "RevisionDeleted", message))
    return events


def _ready(status: spec.InferenceServiceStatus | None) -> spec.Condition | None:
    if status is None:
        return None
    return next((c for c in status.conditions if c.type == "Ready"), None)


def _ready_events(
    before: spec.InferenceServiceStatus | None, after: spec.InferenceServiceStatus
) -> list[Event]:
    old, new = _ready(before), _ready(after)
    if new is None:
        return []
    if new.status == "True":
        if old is None or old.status != "True":
            return [Event("Normal", "Ready", new.message)]
        return []
    failing = new.reason in REASONS
    changed = old is None or old.status != new.status or old.reason != new.reason
    if changed and (failing or (old is not None and old.status == "True")):
        return [Event("Warning" if failing else "Normal", new.reason, new.message)]
    return []
