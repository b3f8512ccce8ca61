"""One reconciliation: read -> pure core -> write, repeated until a pass has nothing to write.

Each pass reads the InferenceService and its children afresh, from memory that watches keep
current (cluster.py) and that holds the API server's answer to each of our writes: never from
what the operator meant to write. Deletions in particular wait for a pass that sees traffic
gone (see `plan`). Status is computed and written once, from the last pass's reading, and
only when it differs from the stored status; Events go out for the transitions between the two.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from sluice_operator import desired as desired_mod
from sluice_operator import events, spec, status
from sluice_operator.cluster import Cluster
from sluice_operator.live import LiveState
from sluice_operator.metrics import OperatorMetrics
from sluice_operator.naming import Manifest
from sluice_operator.plan import Plan, make_plan
from sluice_operator.settings import Settings

log = logging.getLogger(__name__)
MAX_PASSES = 5
"""A promotion writes in three passes (switch, drop the router, drop the old stable)."""


@dataclass(frozen=True)
class Outcome:
    """How a reconciliation ended; `settled` false means call again soon."""

    settled: bool
    writes: int


@dataclass(frozen=True)
class _Pass:
    body: Manifest
    isvc: spec.InferenceService
    live: LiveState
    desired: desired_mod.Desired
    plan: Plan


class Reconciler:
    """Ties the cluster (memory for reads, the gateway for writes) to the pure core; one
    instance serves every InferenceService."""

    def __init__(
        self,
        cluster: Cluster,
        settings: Settings,
        metrics: OperatorMetrics,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._cluster = cluster
        self._settings = settings
        self._metrics = metrics
        self._clock = clock

    def reconcile(self, namespace: str, name: str) -> Outcome:
        """Bring one InferenceService's children and status in line with its spec."""
        started = time.monotonic()
        try:
            outcome, result = self._reconcile(namespace, name)
        except Exception as error:
            self._metrics.errors.labels(type(error).__name__).inc()
            self._metrics.reconciliations.labels("error").inc()
            raise
        finally:
            self._metrics.duration.observe(time.monotonic() - started)
        self._metrics.reconciliations.labels(result).inc()
        return outcome

    def _reconcile(self, namespace: str, name: str) -> tuple[Outcome, str]:
        writes = 0
        for _ in range(MAX_PASSES):
            current = self._observe(namespace, name)
            if not isinstance(current, _Pass):
                return current
            if current.plan.empty:
                break
            writes += self._execute(current.plan)
        else:
            current = self._observe(namespace, name)
            if not isinstance(current, _Pass):
                return current
        observation = status.Observation(
            isvc=current.isvc,
            desired=current.desired,
            live=current.live,
            converged=current.plan.empty,
            now=self._clock(),
            previous=_previous_status(current.body),
        )
        writes += self._write_status(current.body, status.compute(observation, self._settings))
        result = "converged" if current.plan.empty else "pending"
        return Outcome(settled=current.plan.empty, writes=writes), result

    def _observe(self, namespace: str, name: str) -> _Pass | tuple[Outcome, str]:
        body = self._cluster.get_isvc(namespace, name)
        if body is None or body.get("metadata", {}).get("deletionTimestamp"):
            return Outcome(settled=True, writes=0), "gone"
        try:
            isvc = spec.parse({**body, "status": None})
            live = self._cluster.read_children(namespace, name)
            desired = desired_mod.build(isvc, self._settings, live)
        except (spec.SpecError, ValidationError) as error:
            log.warning("%s/%s: spec refused: %s", namespace, name, error)
            generation = body.get("metadata", {}).get("generation")
            invalid = status.invalid_spec(
                generation, _previous_status(body), str(error), self._clock()
            )
            return Outcome(settled=True, writes=self._write_status(body, invalid)), "invalid"
        plan = make_plan(desired, live, name, isvc.metadata.uid)
        return _Pass(body=body, isvc=isvc, live=live, desired=desired, plan=plan)

    def _execute(self, plan: Plan) -> int:
        written = self._metrics.objects_written
        for obj in plan.apply:
            self._cluster.apply(obj)
            written.labels(obj["kind"], "apply").inc()
        for ref in plan.drain:
            self._cluster.drain(ref)
            written.labels(ref.kind, "drain").inc()
        for ref in plan.delete:
            self._cluster.delete(ref)
            written.labels(ref.kind, "delete").inc()
        return len(plan.apply) + len(plan.drain) + len(plan.delete)

    def _write_status(self, body: Manifest, new: spec.InferenceServiceStatus) -> int:
        rendered = _dump(new)
        if rendered == body.get("status"):
            return 0
        meta = body["metadata"]
        self._cluster.apply_status(meta["namespace"], meta["name"], rendered)
        self._metrics.objects_written.labels(spec.KIND, "status").inc()
        writes = 1
        for event in events.transitions(_previous_status(body), new):
            self._cluster.post_event(body, event)
            self._metrics.objects_written.labels("Event", "event").inc()
            writes += 1
        return writes


def _dump(value: spec.InferenceServiceStatus) -> dict[str, Any]:
    return value.model_dump(mode="json", by_alias=True, exclude_none=True)


def _previous_status(body: Manifest) -> spec.InferenceServiceStatus | None:
    stored = body.get("status")
    if not stored:
        return None
    try:
        return spec.InferenceServiceStatus.model_validate(stored)
    except ValidationError:
        return None
