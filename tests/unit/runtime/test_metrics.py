"""The runtime's metrics as Prometheus reads them: buckets, sums, counts, gauges, labels."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sluice_runtime.metrics import Buckets, RuntimeMetrics

LABELS = {"model": "m", "version": "1"}


def sample(metrics: RuntimeMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, {**LABELS, **labels})


def test_request_latency_buckets_are_cumulative_and_count_requests_per_code() -> None:
    metrics = RuntimeMetrics(CollectorRegistry(), "m", "1")
    for seconds in (0.00005, 0.0003, 0.0003, 0.02, 30.0):
        metrics.observe_request("rest", "200", seconds)
    metrics.observe_request("rest", "429", 0.001)
    ok = {"protocol": "rest", "code": "200"}
    bucket = "sluice_request_duration_seconds_bucket"
    assert sample(metrics, bucket, le="0.0001", **ok) == 1
    assert sample(metrics, bucket, le="0.0005", **ok) == 3
    assert sample(metrics, bucket, le="0.025", **ok) == 4
    assert sample(metrics, bucket, le="10.0", **ok) == 4
    assert sample(metrics, bucket, le="+Inf", **ok) == 5
    assert sample(metrics, "sluice_request_duration_seconds_count", **ok) == 5
    assert sample(metrics, "sluice_request_duration_seconds_sum", **ok) == pytest.approx(30.02065)
    assert sample(metrics, "sluice_requests_total", **ok) == 5
    assert sample(metrics, "sluice_requests_total", protocol="rest", code="429") == 1
    assert sample(metrics, "sluice_requests_total", protocol="grpc", code="OK") is None


def test_a_value_on_a_bound_counts_in_that_bucket() -> None:
    buckets = Buckets((1.0, 2.0))
    for value in (1.0, 2.0, 2.5):
        buckets.observe(value)
    assert buckets.snapshot() == ([1, 1, 1], 5.5)


def test_in_flight_rises_inside_the_block_and_falls_after_it_even_on_error() -> None:
    metrics = RuntimeMetrics(CollectorRegistry(), "m", "1")
    with metrics.in_flight("grpc"), metrics.in_flight("grpc"):
        assert sample(metrics, "sluice_requests_in_flight", protocol="grpc") == 2
    with pytest.raises(RuntimeError), metrics.in_flight("grpc"):
        raise RuntimeError("boom")
    assert sample(metrics, "sluice_requests_in_flight", protocol="grpc") == 0


def test_batcher_series_and_the_output_histogram_with_negative_bounds() -> None:
    metrics = RuntimeMetrics(CollectorRegistry(), "m", "1")
    metrics.queue_depth.follow(lambda: 3)
    metrics.batch_size.observe(5)
    metrics.inference_seconds.observe(0.002)
    metrics.queue_seconds.observe(0.0001)
    metrics.output.observe(-20.0)
    metrics.output.observe(0.5)
    assert sample(metrics, "sluice_queue_depth") == 3
    assert sample(metrics, "sluice_batch_size_bucket", le="4.0") == 0
    assert sample(metrics, "sluice_batch_size_bucket", le="8.0") == 1
    assert sample(metrics, "sluice_inference_duration_seconds_sum") == pytest.approx(0.002)
    assert sample(metrics, "sluice_queue_duration_seconds_bucket", le="0.0001") == 1
    assert sample(metrics, "sluice_model_output_bucket", le="-10.0") == 1
    assert sample(metrics, "sluice_model_output_bucket", le="0.5") == 2
    assert sample(metrics, "sluice_model_output_count") == 2


def test_the_exposition_parses_and_names_each_family_once() -> None:
    metrics = RuntimeMetrics(CollectorRegistry(), "m", "1")
    metrics.observe_request("rest", "200", 0.001)
    with metrics.in_flight("rest"):
        text = generate_latest(metrics.registry).decode()
    names = [family.name for family in text_string_to_metric_families(text)]
    assert len(names) == len(set(names))
    assert {
        "sluice_requests",
        "sluice_request_duration_seconds",
        "sluice_requests_in_flight",
        "sluice_queue_depth",
        "sluice_queue_duration_seconds",
        "sluice_inference_duration_seconds",
        "sluice_batch_size",
        "sluice_model_output",
        "sluice_model_load_seconds",
        "sluice_model_warmup_seconds",
    } <= set(names)


def test_observations_from_two_threads_are_all_counted() -> None:
    buckets = Buckets((0.5,))

    def observe() -> None:
        for _ in range(20_000):
            buckets.observe(1.0)

    threads = [threading.Thread(target=observe) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert buckets.snapshot() == ([0, 40_000], 40_000.0)
