"""The operator's own Prometheus metrics, on a registry the caller owns (never the global one)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass(frozen=True)
class OperatorMetrics:
    """Reconciliations, their duration and errors, and every write to the API server.

    `objects_written` counts applies, drain relabels, deletions, status writes and events; a
    resync that changes nothing leaves it where it was.
    """

    registry: CollectorRegistry
    reconciliations: Counter
    duration: Histogram
    errors: Counter
    objects_written: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> OperatorMetrics:
        """Register the metrics on `registry` (a fresh one by default)."""
        registry = registry if registry is not None else CollectorRegistry()
        return cls(
            registry=registry,
            reconciliations=Counter(
                "sluice_operator_reconciliations",
                "Reconciliations of an InferenceService, by result.",
                ["result"],
                registry=registry,
            ),
            duration=Histogram(
                "sluice_operator_reconcile_duration_seconds",
                "Wall time of one reconciliation (all its passes).",
                buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                registry=registry,
            ),
            errors=Counter(
                "sluice_operator_reconcile_errors",
                "Reconciliations that failed, by exception type.",
                ["error"],
                registry=registry,
            ),
            objects_written=Counter(
                "sluice_operator_objects_written",
                "Writes to the API server by kind and action: apply, drain, delete, status, event.",
                ["kind", "action"],
                registry=registry,
            ),
        )
