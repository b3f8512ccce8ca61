"""From repeated runs to the results page: medians, ratios to each peer, and the targets.

Pure: rows in, markdown out. Each point (model, server, protocol, concurrency) is measured
several times; every figure reported is the median of those repeats, taken per figure.
The targets are the ones issue 7 sets, checked on the benchmark MLP against the same run.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

SLUICE = "sluice"
SLUICE_BATCH = "sluice-batch"
NOOP = "noop"
KSERVE = "kserve"
MLSERVER = "mlserver"
TARGET_MODEL = "mlp"


@dataclass(frozen=True)
class Settings:
    """How each point is measured, and the batching Sluice's batching rows use."""

    seconds: int
    warmup: int
    repeats: int
    concurrency: tuple[int, ...]
    batch: int
    batch_delay_us: int


@dataclass(frozen=True, order=True)
class Point:
    """What one row measures."""

    model: str
    protocol: str
    concurrency: int
    server: str


@dataclass(frozen=True)
class Sample:
    """One repeat at a point: what the client saw and the server's CPU seconds meanwhile."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu_s: float
    client_cpu_s: float
    others_cpu_s: float = 0.0  # the other servers', idle on the same core meanwhile


@dataclass(frozen=True)
class Row:
    """The medians of a point's samples."""

    point: Point
    rps: float
    p50_ms: float
    p99_ms: float
    server_cpu_ms: float
    client_cpu_ms: float
    errors: int
    repeats: int
    others_cpu_share: float = 0.0  # the most the idle servers took of the core, any repeat
    cpu_rounds: tuple[float, ...] = ()  # server CPU ms/req of each repeat, in round order

    @property
    def client_headroom(self) -> float:
        """How many times faster the client is than the server (CPU per request ratio)."""
        if math.isnan(self.client_cpu_ms) or self.client_cpu_ms <= 0:
            return math.nan
        return self.server_cpu_ms / self.client_cpu_ms

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self.point), **{k: v for k, v in asdict(self).items() if k != "point"}}


def summarize(point: Point, samples: Sequence[Sample]) -> Row:
    """Medians of each figure over the repeats; errors are summed, never hidden."""
    if not samples:
        raise ValueError(f"no samples for {point}")

    def median(values: Iterable[float]) -> float:
        found = list(values)
        return float(statistics.median(found)) if found else math.nan

    answered = [s for s in samples if s.requests > 0]  # a stalled window has no per-request cost
    # Each repeat's server CPU per request, in round order (NaN where nothing was answered):
    # the median below, and the round-by-round ratios of `cpu_ratio`.
    cpu_rounds = tuple(
        1e3 * s.server_cpu_s / s.requests if s.requests else math.nan for s in samples
    )

    return Row(
        point=point,
        rps=median(s.requests / s.seconds for s in samples),
        p50_ms=median(s.p50_ms for s in samples),
        p99_ms=median(s.p99_ms for s in samples),
        server_cpu_ms=median(cpu for cpu in cpu_rounds if not math.isnan(cpu)),
        client_cpu_ms=median(1e3 * s.client_cpu_s / s.requests for s in answered),
        errors=sum(s.errors for s in samples),
        repeats=len(samples),
        others_cpu_share=max(s.others_cpu_s / s.seconds for s in samples),
        cpu_rounds=cpu_rounds,
    )


Rows = Mapping[Point, Row]


def _get(rows: Rows, model: str, protocol: str, concurrency: int, server: str) -> Row | None:
    return rows.get(Point(model, protocol, concurrency, server))


@dataclass(frozen=True)
class Check:
    """One target: what it asks, the worst figure across the points it covers, and whether met."""

    target: str
    worst: str
    met: bool


Pair = tuple[str, float | None, float | None]


def _field(row: Row | None, name: str) -> float | None:
    """A row's figure; None when the row is missing or its server answered nothing."""
    if row is None or row.rps == 0:
        return None
    value = float(getattr(row, name))
    return None if math.isnan(value) else value


def cpu_ratio(a: Row | None, b: Row | None) -> float | None:
    """`a`'s server CPU per request over `b`'s: the median of the ratios round by round when
    both were measured in the same rounds (each round's two figures are seconds apart, so a
    slow spell of the machine cancels out), else the ratio of their medians."""
    top, bottom = _field(a, "server_cpu_ms"), _field(b, "server_cpu_ms")
    if top is None or not bottom or a is None or b is None:
        return None
    if len(a.cpu_rounds) != len(b.cpu_rounds):
        return top / bottom
    paired = [x / y for x, y in zip(a.cpu_rounds, b.cpu_rounds, strict=True) if y > 0 and x >= 0]
    return float(statistics.median(paired)) if paired else top / bottom


def _ratio_check(
    target: str, pairs: Iterable[Pair], bound: float, *, at_least: bool
) -> Check | None:
    """`a / b` against `bound` for every labelled pair; reports the worst one."""
    ratios = [
        (label, a / b if b else float("inf"))
        for label, a, b in pairs
        if a is not None and b is not None
    ]
    if not ratios:
        return None
    label, worst = (min if at_least else max)(ratios, key=lambda item: item[1])
    met = worst >= bound if at_least else worst <= bound
    return Check(target, f"{worst:.2f}x ({label})", met)


def checks(rows: Rows, concurrencies: Sequence[int]) -> list[Check]:
    """Issue 7's targets on the benchmark MLP."""
    m = TARGET_MODEL
    protocols = sorted({p.protocol for p in rows if p.model == m})
    loaded = [c for c in concurrencies if c >= 16]
    results: list[Check | None] = []

    def pairs(server: str, peer: str, field: str, levels: Sequence[int]) -> list[Pair]:
        return [
            (
                f"{protocol} c{c}",
                _field(_get(rows, m, protocol, c, server), field),
                _field(_get(rows, m, protocol, c, peer), field),
            )
            for protocol in protocols
            for c in levels
        ]

    cpu_pairs: list[Pair] = [
        (f"{protocol} c{c}",
         cpu_ratio(_get(rows, m, protocol, c, SLUICE), _get(rows, m, protocol, c, KSERVE)), 1.0)
        for protocol in protocols
        for c in concurrencies
    ]  # fmt: skip
    results.append(
        _ratio_check("server CPU/request ≤ 1/3 of KServe's (Sluice ÷ KServe ≤ 0.33, per round)",
                     cpu_pairs, 1 / 3, at_least=False)
    )  # fmt: skip
    results.append(
        _ratio_check("throughput c16/c64 ≥ 2x KServe",
                     pairs(SLUICE, KSERVE, "rps", loaded), 2.0, at_least=True)
    )  # fmt: skip
    results.append(
        _ratio_check("throughput c16/c64 ≥ 3x MLServer",
                     pairs(SLUICE, MLSERVER, "rps", loaded), 3.0, at_least=True)
    )  # fmt: skip
    if 1 in concurrencies:
        deltas = []
        for protocol in protocols:
            a, b = _get(rows, m, protocol, 1, SLUICE), _get(rows, m, protocol, 1, NOOP)
            if a and b:
                deltas.append((f"{protocol}", a.p50_ms - b.p50_ms))
        if deltas:
            label, worst = max(deltas, key=lambda item: item[1])
            results.append(
                Check("c1 p50 within 0.5 ms of the do-nothing server", f"+{worst:.3f} ms ({label})",
                      worst <= 0.5)
            )  # fmt: skip
    top = max(concurrencies)
    results.append(
        _ratio_check(f"batching c{top}: throughput ≥ 4x KServe",
                     pairs(SLUICE_BATCH, KSERVE, "rps", [top]), 4.0, at_least=True)
    )  # fmt: skip
    results.append(
        _ratio_check(f"batching c{top}: p99 no worse than KServe's (ratio ≤ 1)",
                     pairs(SLUICE_BATCH, KSERVE, "p99_ms", [top]), 1.0, at_least=False)
    )  # fmt: skip
    return [check for check in results if check is not None]


def _fmt(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


def rows_table(rows: Rows, model: str) -> list[str]:
    """Every point of one model, grouped by protocol and concurrency."""
    lines = [
        "| protocol | c | server | req/s | p50 ms | p99 ms | server CPU ms/req "
        "| client headroom | errors |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for point in sorted(p for p in rows if p.model == model):
        row = rows[point]
        if row.rps == 0:
            lines.append(
                f"| {point.protocol} | {point.concurrency} | {point.server} | 0 "
                f"| stalled: no answer within a window | | | | {row.errors} |"
            )
            continue
        lines.append(
            f"| {point.protocol} | {point.concurrency} | {point.server} | {_fmt(row.rps, 0)} "
            f"| {_fmt(row.p50_ms, 3)} | {_fmt(row.p99_ms, 3)} | {_fmt(row.server_cpu_ms, 3)} "
            f"| {_fmt(row.client_headroom, 1)}x | {row.errors} |"
        )
    return lines


def ratio_table(rows: Rows, model: str) -> list[str]:
    """Sluice against each peer at each protocol and concurrency (blank where a peer is absent)."""
    lines = [
        "| protocol | c | req/s ÷ KServe | req/s ÷ MLServer | CPU/req KServe ÷ Sluice "
        "| CPU/req MLServer ÷ Sluice | batching req/s ÷ KServe | batching p99 ÷ KServe p99 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    keys = sorted({(p.protocol, p.concurrency) for p in rows if p.model == model})
    for protocol, c in keys:
        sluice = _get(rows, model, protocol, c, SLUICE)
        batch = _get(rows, model, protocol, c, SLUICE_BATCH)
        kserve = _get(rows, model, protocol, c, KSERVE)
        mlserver = _get(rows, model, protocol, c, MLSERVER)

        def ratio(a: Row | None, b: Row | None, name: str) -> str:
            top, bottom = _field(a, name), _field(b, name)
            return f"{top / bottom:.2f}x" if top is not None and bottom else "-"

        def cpu(a: Row | None, b: Row | None) -> str:
            found = cpu_ratio(a, b)
            return f"{found:.2f}x" if found is not None else "-"

        cells = [
            ratio(sluice, kserve, "rps"),
            ratio(sluice, mlserver, "rps"),
            cpu(kserve, sluice),
            cpu(mlserver, sluice),
            ratio(batch, kserve, "rps"),
            ratio(batch, kserve, "p99_ms"),
        ]
        lines.append(f"| {protocol} | {c} | " + " | ".join(cells) + " |")
    return lines


def checks_table(found: Sequence[Check]) -> list[str]:
    lines = ["| target | worst point | met |", "| --- | --- | --- |"]
    lines += [f"| {c.target} | {c.worst} | {'yes' if c.met else '**no**'} |" for c in found]
    return lines
