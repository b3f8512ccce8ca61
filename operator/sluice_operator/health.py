"""Why pods are not serving, read from every pod's status (never just the first pod's).

Only failures that hold now count: a pod that crashed once and runs again is healthy. The
reasons are what a user acts on: fix the model (ModelFetchFailed: download or digest), give
memory (OOMKilled), fix the image or config, add capacity (Unschedulable, e.g. no GPU node).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from sluice_operator.live import labels_of
from sluice_operator.naming import LABEL_REVISION, Manifest

# Most telling first: the summary's reason is the first one present.
REASONS = (
    "Unschedulable",
    "ModelFetchFailed",
    "OOMKilled",
    "ImagePullFailed",
    "ContainerConfigError",
    "CrashLoopBackOff",
)
_IMAGE_PULL = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}
_CONFIG = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
MESSAGE_LIMIT = 300


@dataclass(frozen=True)
class PodProblem:
    """One pod's current failure."""

    revision: str
    pod: str
    reason: str
    message: str


def pod_problem(pod: Manifest) -> PodProblem | None:
    """The failure this pod is in now, or None. Terminating pods are not judged."""
    meta = pod.get("metadata", {})
    if meta.get("deletionTimestamp"):
        return None
    status = pod.get("status") or {}
    found = (
        _unschedulable(status)
        or _init_failure(status.get("initContainerStatuses") or [])
        or _container_failure(status.get("containerStatuses") or [])
    )
    if found is None:
        return None
    reason, message = found
    return PodProblem(
        revision=labels_of(pod).get(LABEL_REVISION, ""),
        pod=str(meta.get("name", "")),
        reason=reason,
        message=_short(message),
    )


def problems(pods: Iterable[Manifest], revisions: Iterable[str]) -> list[PodProblem]:
    """Failures of the pods of the given revisions."""
    wanted = set(revisions)
    found = (pod_problem(p) for p in pods if labels_of(p).get(LABEL_REVISION) in wanted)
    return [p for p in found if p is not None]


def summarize(found: list[PodProblem], describe: dict[str, str]) -> tuple[str, str] | None:
    """(reason, message) over all failing pods: the most telling reason, and per revision and
    reason how many pods, with one example message. `describe`: revision -> how to name it."""
    if not found:
        return None
    counts = Counter((p.revision, p.reason) for p in found)
    example = {(p.revision, p.reason): p.message for p in found}
    ordered = sorted(counts.items(), key=lambda item: _rank(item[0][1]))
    parts = [
        f"{describe.get(rev, rev)}: {count} pod(s) {reason}: {example[(rev, reason)]}"
        for (rev, reason), count in ordered
    ]
    top = min((p.reason for p in found), key=_rank)
    return top, "; ".join(parts)


def _rank(reason: str) -> int:
    return REASONS.index(reason) if reason in REASONS else len(REASONS)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def _unschedulable(status: Manifest) -> tuple[str, str] | None:
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            return "Unschedulable", condition.get("message") or "no node fits the pod"
    return None


def _terminated_text(terminated: Manifest) -> str:
    code = terminated.get("exitCode")
    detail = terminated.get("message") or terminated.get("reason") or ""
    return f"exit code {code}" + (f": {detail}" if detail else "")


def _init_failure(statuses: list[Manifest]) -> tuple[str, str] | None:
    for status in statuses:
        state = status.get("state") or {}
        last = (status.get("lastState") or {}).get("terminated") or {}
        terminated = state.get("terminated") or {}
        waiting = state.get("waiting") or {}
        failed = terminated if terminated.get("exitCode", 0) != 0 else None
        if failed is None and waiting.get("reason") == "CrashLoopBackOff" and last:
            failed = last
        if failed is not None:
            if failed.get("reason") == "OOMKilled":
                return "OOMKilled", f"init container {status.get('name')} was OOM-killed"
            return "ModelFetchFailed", _terminated_text(failed)
        pulled = _waiting_failure(waiting)
        if pulled is not None:
            return pulled
    return None


def _container_failure(statuses: list[Manifest]) -> tuple[str, str] | None:
    for status in statuses:
        state = status.get("state") or {}
        waiting = state.get("waiting") or {}
        terminated = state.get("terminated") or {}
        last = (status.get("lastState") or {}).get("terminated") or {}
        if terminated.get("reason") == "OOMKilled" or (
            waiting.get("reason") == "CrashLoopBackOff" and last.get("reason") == "OOMKilled"
        ):
            return "OOMKilled", f"container {status.get('name')} was OOM-killed (memory limit)"
        if waiting.get("reason") == "CrashLoopBackOff":
            detail = _terminated_text(last) if last else waiting.get("message", "")
            return "CrashLoopBackOff", detail
        pulled = _waiting_failure(waiting)
        if pulled is not None:
            return pulled
    return None


def _waiting_failure(waiting: Manifest) -> tuple[str, str] | None:
    reason = waiting.get("reason")
    if reason in _IMAGE_PULL:
        return "ImagePullFailed", waiting.get("message") or str(reason)
    if reason in _CONFIG:
        return "ContainerConfigError", waiting.get("message") or str(reason)
    return None
