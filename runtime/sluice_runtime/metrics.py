"""Prometheus metrics of one runtime, registered in a registry the caller owns.

Nothing registers at import time: `RuntimeMetrics(registry, ...)` is built by the
server factory, so tests and embedders can make as many as they like.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
_OUTPUT_BUCKETS = (-10.0, -1.0, -0.5, -0.1, 0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 2.0, 5.0, 10.0)


class RuntimeMetrics:
    """Every sluice_* series of one served model; labels model and version are bound here."""

    def __init__(self, registry: CollectorRegistry, model: str, version: str) -> None:
        self.registry = registry
        self.model = model
        self.version = version
        self._requests = Counter(
            "sluice_requests",
            "Inference requests answered.",
            ["model", "version", "protocol", "code"],
            registry=registry,
        )
        self._request_seconds = Histogram(
            "sluice_request_duration_seconds",
            "Time from request received to response ready.",
            ["model", "version", "protocol", "code"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        # Labelled children, looked up once: labels() costs more than the observation itself.
        self._request_series: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self._in_flight_series: dict[str, Gauge] = {}
        self._in_flight = Gauge(
            "sluice_requests_in_flight",
            "Requests being handled now.",
            ["model", "version", "protocol"],
            registry=registry,
        )
        self.queue_seconds = Histogram(
            "sluice_queue_duration_seconds",
            "Time a request waited for its batch to run.",
            ["model", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        ).labels(model, version)
        self.inference_seconds = Histogram(
            "sluice_inference_duration_seconds",
            "Time the model took to run one batch.",
            ["model", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        ).labels(model, version)
        self.batch_size = Histogram(
            "sluice_batch_size",
            "Requests merged into one model run.",
            ["model", "version"],
            buckets=_BATCH_BUCKETS,
            registry=registry,
        ).labels(model, version)
        self.queue_depth = Gauge(
            "sluice_queue_depth",
            "Requests waiting to be batched.",
            ["model", "version"],
            registry=registry,
        ).labels(model, version)
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
        self.output = Histogram(
            "sluice_model_output",
            "First output value per request, or the top class index for classifiers.",
            ["model", "version"],
            buckets=_OUTPUT_BUCKETS,
            registry=registry,
        ).labels(model, version)
        # sluice_shadow_*: copies sent as a primary, comparisons recorded as a shadow.
        self.shadow = ShadowMetrics(registry, model, version)

    def observe_request(self, protocol: str, code: str, seconds: float) -> None:
        """Count one answered request and its latency under its protocol and status code."""
        series = self._request_series.get((protocol, code))
        if series is None:
            labels = (self.model, self.version, protocol, code)
            series = (self._requests.labels(*labels), self._request_seconds.labels(*labels))
            self._request_series[(protocol, code)] = series
        series[0].inc()
        series[1].observe(seconds)

    @contextmanager
    def in_flight(self, protocol: str) -> Iterator[None]:
        """Hold the in-flight gauge up for the duration of a request."""
        gauge = self._in_flight_series.get(protocol)
        if gauge is None:
            gauge = self._in_flight.labels(self.model, self.version, protocol)
            self._in_flight_series[protocol] = gauge
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()
