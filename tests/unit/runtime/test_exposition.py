"""Merging the expositions of several workers into one scrape."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sluice_runtime.exposition import merge_expositions


def _worker_text(requests: int, latency: float, info: float) -> str:
    registry = CollectorRegistry()
    Counter("reqs", "Requests.", ["code"], registry=registry).labels("200").inc(requests)
    Histogram("lat_seconds", "Latency.", buckets=(0.1, 1.0), registry=registry).observe(latency)
    Gauge("info", "Model info.", registry=registry).set(info)
    return generate_latest(registry).decode()


def test_each_family_once_with_every_workers_samples_labelled() -> None:
    merged = merge_expositions(
        {"0": _worker_text(3, 0.05, 1), "1": _worker_text(5, 0.5, 1)}
    ).decode()
    families = {family.name: family for family in text_string_to_metric_families(merged)}
    assert merged.count("# TYPE reqs_total counter") == 1
    assert merged.count("# TYPE lat_seconds histogram") == 1
    counts = {
        s.labels["worker"]: s.value for s in families["reqs"].samples if s.name == "reqs_total"
    }
    assert counts == {"0": 3.0, "1": 5.0}
    buckets = {
        (s.labels["worker"], s.labels["le"]): s.value
        for s in families["lat_seconds"].samples
        if s.name == "lat_seconds_bucket"
    }
    assert buckets[("0", "0.1")] == 1.0
    assert buckets[("1", "0.1")] == 0.0
    assert buckets[("1", "1.0")] == 1.0
    assert [s.value for s in families["info"].samples] == [1.0, 1.0]  # not summed to 2
    assert all(s.labels["code"] == "200" for s in families["reqs"].samples if "code" in s.labels)


def test_a_worker_that_did_not_answer_is_simply_absent() -> None:
    merged = merge_expositions({"2": _worker_text(1, 0.2, 1)}).decode()
    workers = {
        s.labels["worker"] for f in text_string_to_metric_families(merged) for s in f.samples
    }
    assert workers == {"2"}
