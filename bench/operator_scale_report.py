"""bench/results/operator_scale.md from one run of bench/operator_scale.py (pure)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

READY_TARGET_S = 60.0
RSS_TARGET_MB = 250.0


@dataclass(frozen=True)
class Latency:
    """p50 and p99 of a handful of timings, in seconds."""

    p50: float
    p99: float
    samples: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Latency:
        if not values:
            raise ValueError("no timings")
        ordered = sorted(values)
        # Nearest rank: with 30 samples p99 is the slowest one, never an interpolated guess.
        rank = max(1, -(-99 * len(ordered) // 100))
        return cls(statistics.median(ordered), ordered[rank - 1], len(ordered))


@dataclass(frozen=True)
class ServiceCosts:
    """The API server's own figures for Service creates and their ClusterIP allocations."""

    creates: float = 0.0
    create_seconds: float = 0.0
    allocations: float = 0.0
    allocation_seconds: float = 0.0

    def __sub__(self, before: ServiceCosts) -> ServiceCosts:
        return ServiceCosts(
            self.creates - before.creates,
            self.create_seconds - before.create_seconds,
            self.allocations - before.allocations,
            self.allocation_seconds - before.allocation_seconds,
        )

    def text(self) -> str:
        """Creates and their mean latency, allocations and theirs, and what the allocations
        add up to (they run one at a time: a floor under the time to create them all)."""
        if not self.creates or not self.allocations:
            return "none"
        create_ms = 1e3 * self.create_seconds / self.creates
        allocation_ms = 1e3 * self.allocation_seconds / self.allocations
        return (
            f"{self.creates:,.0f} creates, {create_ms:,.0f} ms each; {self.allocations:,.0f} "
            f"allocations, {allocation_ms:,.0f} ms each, {self.allocation_seconds:,.0f} s in all"
        )


@dataclass
class FloorRun:
    """The control plane alone (bench/operator_floor.py): the objects `count` InferenceServices
    become, applied with no operator, timed until every Deployment is available."""

    count: int
    objects: dict[str, int] = field(default_factory=dict)
    apply_seconds: float = 0.0
    available_seconds: float = 0.0
    available: int = 0
    services: ServiceCosts = field(default_factory=ServiceCosts)

    @property
    def deployments(self) -> int:
        return self.objects.get("Deployment", 0)

    @property
    def total_seconds(self) -> float:
        """First apply to every Deployment available (or to the end of the wait)."""
        return self.apply_seconds + self.available_seconds

    def text(self) -> str:
        """One line: what was applied and how long the control plane took for it."""
        made = ", ".join(f"{n:,} {kind}s" for kind, n in self.objects.items())
        done = (
            "all available"
            if self.available == self.deployments
            else f"only {self.available:,} of {self.deployments:,} available"
        )
        return (
            f"{made} applied in {self.apply_seconds:.1f} s; {done} "
            f"{self.available_seconds:.1f} s later, {self.total_seconds:.1f} s from the first "
            f"apply; Services: {self.services.text()}"
        )


@dataclass
class ScaleRun:
    """Everything one run measured."""

    count: int
    resync_period: float
    create_seconds: float = 0.0
    ready_seconds: float = 0.0
    ready_count: int = 0
    all_ready_seconds: float = 0.0
    final_ready: int = 0
    settled: bool = True
    progress: list[tuple[float, int, float]] = field(default_factory=list)
    idle_rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    bulk_requests: float = 0.0
    bulk_writes: float = 0.0
    bulk_cpu_seconds: float = 0.0
    bulk_passes: float = 0.0
    resync_seconds: float = 0.0
    resync_passes: float = 0.0
    resync_writes: float = 0.0
    resync_requests: float = 0.0
    written: dict[str, float] = field(default_factory=dict)
    resync_written: dict[str, float] = field(default_factory=dict)
    services: ServiceCosts = field(default_factory=ServiceCosts)
    children_per_isvc: int = 0
    children_latency: Latency | None = None
    ready_latency: Latency | None = None
    errors: float = 0.0
    floor: FloorRun | None = None


def _verdict(met: bool) -> str:
    return "yes" if met else "**no**"


def targets(run: ScaleRun) -> list[str]:
    lines = ["| target | measured | met |", "| --- | --- | --- |"]
    all_ready = run.ready_count == run.count
    lines.append(
        f"| all {run.count} Ready < {READY_TARGET_S:.0f} s after the last create "
        f"| {_ready_text(run)}{_floor_note(run)} "
        f"| {_verdict(all_ready and run.ready_seconds < READY_TARGET_S)} |"
    )
    lines.append(
        f"| operator peak RSS < {RSS_TARGET_MB:.0f} MB | {run.peak_rss_mb:.0f} MiB (VmHWM) "
        f"| {_verdict(run.peak_rss_mb < RSS_TARGET_MB)} |"
    )
    unsettled = "" if run.settled else " (some were still converging: not a no-op resync)"
    lines.append(
        f"| zero writes on a no-op resync | {run.resync_writes:.0f} writes in "
        f"{run.resync_passes:.0f} reconciliations{unsettled} "
        f"| {_verdict(run.settled and run.resync_writes == 0)} |"
    )
    return lines


def _floor_note(run: ScaleRun) -> str:
    if run.floor is None:
        return ""
    return (
        f" (the control plane alone takes {run.floor.total_seconds:.1f} s from the first write "
        "for the same objects, see below)"
    )


def _ready_text(run: ScaleRun) -> str:
    if run.ready_count == run.count:
        return f"{run.ready_seconds:.1f} s"
    return (
        f"only {run.ready_count} of {run.count} after {run.ready_seconds:.0f} s "
        f"({run.final_ready} after {run.all_ready_seconds:.0f} s)"
    )


def floor_section(run: ScaleRun) -> list[str]:
    """The operator's time against the control plane's own for the same objects."""
    floor = run.floor
    if floor is None:
        return []
    operator_total = run.create_seconds + run.ready_seconds
    return [
        "## The control plane alone: the floor under all Ready",
        "",
        f"`python -m bench.operator_floor`, run first on its own fresh control plane of the same "
        f"build: the {floor.count:,} InferenceServices' objects, rendered by the operator's own "
        "builders (what `sluice render` prints, the final traffic split at once), server-side "
        "applied by 8 client threads with no operator, no InferenceService objects, no status "
        "writes and no events, then timed until every Deployment is available.",
        "",
        "| | first write -> all done | of which writing |",
        "| --- | ---: | ---: |",
        f"| control plane alone: {floor.deployments:,} Deployments available "
        f"| {floor.total_seconds:.1f} s | {floor.apply_seconds:.1f} s |",
        f"| with the operator: {run.count:,} InferenceServices Ready "
        f"| {operator_total:.1f} s | {run.create_seconds:.1f} s (the InferenceServices) |",
        "",
        f"- Applied: {floor.text()}.",
        f"- The operator's total is {operator_total / max(floor.total_seconds, 1e-9):.2f}x the "
        "control plane's own.",
        "",
    ]


def progress_table(run: ScaleRun, every: float = 5.0) -> list[str]:
    """Ready count and RSS about every `every` seconds after the last create."""
    lines = ["| seconds after last create | Ready | operator RSS MiB |", "| ---: | ---: | ---: |"]
    next_at = 0.0
    for index, (t, ready, rss) in enumerate(run.progress):
        if t >= next_at or index == len(run.progress) - 1:
            lines.append(f"| {t:.1f} | {ready} | {rss:.0f} |")
            next_at = t + every
    return lines


def render(run: ScaleRun) -> str:
    per = max(run.count, 1)
    lines = [
        f"# The operator with {run.count:,} InferenceServices",
        "",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python -m bench.operator_scale` "
        "(`make bench-operator`).",
        "",
        "## Targets (issue 7)",
        "",
        *targets(run),
        "",
        "## Setup",
        "",
        "- A fresh control plane from tests/cluster (etcd, kube-apiserver, "
        "kube-controller-manager, kube-scheduler, kwok) on 127.0.0.1, plus roomy kwok nodes; "
        "kwok marks pods Running and Ready as soon as they are scheduled. The chart is "
        "installed with helm and the operator runs as a local process with a token of the "
        "chart's ServiceAccount (its RBAC exactly), "
        f"`--log-level=INFO`, `--resync-seconds={run.resync_period:.0f}`.",
        f"- {run.count} InferenceServices, 70% plain, 15% canary (stable + canary revisions and "
        "the router), 15% shadow, created by 8 client threads as fast as the API server takes "
        f"them ({run.create_seconds:.1f} s for all).",
        "- API requests: an API Priority and Fairness FlowSchema matches only the operator's "
        "ServiceAccount; the API server's `apiserver_flowcontrol_dispatched_requests_total` for it "
        "counts every request the operator made (kopf's watches and patches included). Writes: "
        "the operator's own `sluice_operator_objects_written_total` (applies, relabels, deletes, "
        "status, events). RSS from /proc: VmHWM is the peak.",
        "",
        "## Figures",
        "",
        "| figure | value |",
        "| --- | ---: |",
        f"| all Ready after the last create | {_ready_text(run)} |",
        f"| operator RSS idle / peak (VmHWM) | {run.idle_rss_mb:.0f} / {run.peak_rss_mb:.0f} MiB |",
        f"| API requests, create to the end of that wait | {run.bulk_requests:,.0f} "
        f"({run.bulk_requests / per:.1f} per InferenceService) |",
        f"| objects written, same window | {run.bulk_writes:,.0f} "
        f"({run.bulk_writes / per:.1f} per InferenceService) |",
        f"| operator CPU and reconciliations, same window | {run.bulk_cpu_seconds:.1f} s, "
        f"{run.bulk_passes:,.0f} ({run.bulk_passes / per:.1f} per InferenceService) |",
        "| API server, same window: Services (all clients) and their ClusterIP allocations "
        f"| {run.services.text()} |",
        f"| no-op resync: reconciliations / writes / API requests | {run.resync_passes:,.0f} / "
        f"{run.resync_writes:.0f} / {run.resync_requests:,.0f} in {run.resync_seconds:.1f} s |",
        f"| reconcile errors | {run.errors:.0f} |",
    ]
    if run.children_latency and run.ready_latency:
        c, r = run.children_latency, run.ready_latency
        lines += [
            f"| single InferenceService: apply -> all {run.children_per_isvc} children, "
            f"p50 / p99 ({c.samples} runs) | {1e3 * c.p50:.0f} / {1e3 * c.p99:.0f} ms |",
            f"| single InferenceService: apply -> Ready, p50 / p99 | "
            f"{1e3 * r.p50:.0f} / {1e3 * r.p99:.0f} ms |",
        ]
    if run.resync_written:
        lines += ["", "Written during the no-op resync:", ""]
        lines += [f"- `{k}`: {v:,.0f}" for k, v in sorted(run.resync_written.items())]
    lines += ["", *floor_section(run), "## Ready over time", "", *progress_table(run), ""]
    if run.written:
        lines += [
            "## Writes by kind and action (whole run)",
            "",
            "| metric | count |",
            "| --- | ---: |",
        ]
        lines += [f"| `{k}` | {v:,.0f} |" for k, v in sorted(run.written.items())] + [""]
    return "\n".join(lines)


def write_page(out: Path, run: ScaleRun) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(run))
