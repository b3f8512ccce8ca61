"""Prometheus metrics of one runtime, registered in a registry the caller owns.

Nothing registers at import time: `RuntimeMetrics(registry, ...)` is built by the
server factory, so tests and embedders can make as many as they like.

The series touched on every request (requests, latency, in-flight, queue, inference,
batch size, outputs) are plain counters behind one small lock, rendered for Prometheus
by a collector when scraped. Why not prometheus_client's own Histogram and Gauge: their
`observe`/`inc` cost a few microseconds each (label checks, a Python loop over the
buckets, a lock per value), and a request makes about ten of them, as much CPU as a
small model's inference. prometheus_client still writes the exposition.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from sluice_runtime.shadow import ShadowMetrics

_LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
_BATCH_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0)
_OUTPUT_BUCKETS = (-10.0, -1.0, -0.5, -0.1, 0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 2.0, 5.0, 10.0)


class Buckets:
    """One histogram series: a count per bucket (the last is +Inf) and the sum."""

    __slots__ = ("_counts", "_lock", "_sum", "bounds")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self._counts = [0] * (len(self.bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        """Count `value` in the first bucket whose upper bound is at least `value`."""
        index = bisect_left(self.bounds, value)
        with self._lock:
            self._counts[index] += 1
            self._sum += value

    def snapshot(self) -> tuple[list[int], float]:
        """Per-bucket counts (not cumulative) and the sum, read together."""
        with self._lock:
            return list(self._counts), self._sum


class Level:
    """One gauge series: raised and lowered, or read from a source when scraped."""

    __slots__ = ("_lock", "_source", "_value")

    def __init__(self) -> None:
        self._value = 0.0
        self._lock = threading.Lock()
        self._source: Callable[[], float] | None = None

    @property
    def value(self) -> float:
        return self._value if self._source is None else float(self._source())

    def follow(self, source: Callable[[], float]) -> None:
        """Read the value from `source` at each scrape: for a level something already
        counts (the batch queue's length), setting it on every change costs each request."""
        self._source = source

    def inc(self) -> None:
        with self._lock:
            self._value += 1

    def dec(self) -> None:
        with self._lock:
            self._value -= 1


class _Raised:
    """Holds a gauge up while a `with` block runs: a class, cheaper than a generator."""

    __slots__ = ("_level",)

    def __init__(self, level: Level) -> None:
        self._level = level

    def __enter__(self) -> None:
        self._level.inc()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._level.dec()


S = TypeVar("S", Buckets, Level)


@dataclass
class _Family(Generic[S]):
    """The series of one metric, keyed by their values of `labels` (model and version aside)."""

    name: str
    documentation: str
    labels: tuple[str, ...] = ()
    series: dict[tuple[str, ...], S] = field(default_factory=dict)


class _Collector(Collector):
    """Renders the hot series for a scrape, each labelled with the served model and version."""

    def __init__(self, model: str, version: str) -> None:
        self._model = model
        self._version = version
        self.histograms: list[_Family[Buckets]] = []
        self.gauges: list[_Family[Level]] = []
        # The request latency histogram's series also count requests: sluice_requests_total.
        self.requests: _Family[Buckets] | None = None

    def describe(self) -> Iterable[Metric]:
        return self._families(with_samples=False)

    def collect(self) -> Iterable[Metric]:
        return self._families(with_samples=True)

    def _families(self, *, with_samples: bool) -> Iterator[Metric]:
        base = ("model", "version")
        counter = CounterMetricFamily(
            "sluice_requests",
            "Inference requests answered.",
            labels=base + (self.requests.labels if self.requests else ()),
        )
        for family in self.histograms:
            names = base + family.labels
            histogram = HistogramMetricFamily(family.name, family.documentation, labels=names)
            for values, buckets in list(family.series.items()) if with_samples else ():
                counts, total = buckets.snapshot()
                labels = [self._model, self._version, *values]
                histogram.add_metric(labels, _cumulative(buckets.bounds, counts), total)
                if buckets.bounds[0] < 0:
                    # prometheus_client drops _sum, and _count with it, when a bound is
                    # negative (the output histogram); its Histogram keeps _count.
                    histogram.add_sample(
                        f"{family.name}_count", dict(zip(names, labels, strict=True)), sum(counts)
                    )
                if family is self.requests:
                    counter.add_metric(labels, sum(counts))
            yield histogram
        yield counter
        for levels in self.gauges:
            gauge = GaugeMetricFamily(
                levels.name, levels.documentation, labels=base + levels.labels
            )
            for values, level in list(levels.series.items()) if with_samples else ():
                gauge.add_metric([self._model, self._version, *values], level.value)
            yield gauge


def _cumulative(bounds: Sequence[float], counts: Sequence[int]) -> list[tuple[str, float]]:
    running = 0
    buckets = []
    for bound, count in zip([*bounds, float("inf")], counts, strict=True):
        running += count
        buckets.append((floatToGoString(bound), float(running)))  # type: ignore[no-untyped-call]
    return buckets


class RuntimeMetrics:
    """Every sluice_* series of one served model; labels model and version are bound here."""

    def __init__(self, registry: CollectorRegistry, model: str, version: str) -> None:
        self.registry = registry
        self.model = model
        self.version = version
        collector = _Collector(model, version)
        self._requests: _Family[Buckets] = _Family(
            "sluice_request_duration_seconds",
            "Time from request received to response ready.",
            ("protocol", "code"),
        )
        collector.requests = self._requests
        self._in_flight: _Family[Level] = _Family(
            "sluice_requests_in_flight", "Requests being handled now.", ("protocol",)
        )
        self._raised: dict[str, _Raised] = {}
        self.queue_seconds = self._histogram(
            collector,
            "sluice_queue_duration_seconds",
            "Time a request waited for its batch to run.",
            _LATENCY_BUCKETS,
        )
        self.inference_seconds = self._histogram(
            collector,
            "sluice_inference_duration_seconds",
            "Time the model took to run one batch.",
            _LATENCY_BUCKETS,
        )
        self.batch_size = self._histogram(
            collector, "sluice_batch_size", "Requests merged into one model run.", _BATCH_BUCKETS
        )
        self.output = self._histogram(
            collector,
            "sluice_model_output",
            "First output value per request, or the top class index for classifiers.",
            _OUTPUT_BUCKETS,
        )
        collector.histograms.append(self._requests)
        self.queue_depth = Level()
        collector.gauges += [
            _Family(
                "sluice_queue_depth", "Requests waiting to be batched.", (), {(): self.queue_depth}
            ),
            self._in_flight,
        ]
        registry.register(collector)
        self.load_seconds = Gauge(
            "sluice_model_load_seconds",
            "Time to fetch, verify and load the model.",
            ["model", "version"],
            registry=registry,
        ).labels(model, version)
        self.warmup_seconds = Gauge(
            "sluice_model_warmup_seconds",
            "Time the warm-up inferences took.",
            ["model", "version"],
            registry=registry,
        ).labels(model, version)
        # sluice_shadow_*: copies sent as a primary, comparisons recorded as a shadow.
        self.shadow = ShadowMetrics(registry, model, version)

    @staticmethod
    def _histogram(
        collector: _Collector, name: str, documentation: str, bounds: Sequence[float]
    ) -> Buckets:
        series = Buckets(bounds)
        collector.histograms.append(_Family(name, documentation, (), {(): series}))
        return series

    def observe_request(self, protocol: str, code: str, seconds: float) -> None:
        """Count one answered request and its latency under its protocol and status code."""
        series = self._requests.series.get((protocol, code))
        if series is None:
            series = self._requests.series.setdefault((protocol, code), Buckets(_LATENCY_BUCKETS))
        series.observe(seconds)

    def in_flight(self, protocol: str) -> _Raised:
        """Hold the in-flight gauge up for the duration of a request (a `with` block)."""
        raised = self._raised.get(protocol)
        if raised is None:
            level = self._in_flight.series.setdefault((protocol,), Level())
            raised = self._raised.setdefault(protocol, _Raised(level))
        return raised
