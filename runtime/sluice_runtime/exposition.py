"""One Prometheus exposition for a pod whose runtime runs several worker processes.

Each worker counts its own requests; a scrape reaches whichever worker accepts it. The
scraped worker gathers every worker's exposition and this merges them: each sample gets a
`worker` label, and each family appears once, with the samples of all workers. Labels, not
sums, because some series are not additive (a model-info gauge, load time) and PromQL sums
the rest (`sum without (worker) (...)`). Pure: text in, text out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

WORKER_LABEL = "worker"


class _Families:
    """A collector yielding already-built families, so prometheus_client writes the text."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def merge_expositions(by_worker: Mapping[str, str]) -> bytes:
    """The expositions of all workers (worker id -> text) as one, each sample labelled."""
    merged: dict[str, Metric] = {}
    for worker, text in sorted(by_worker.items()):
        for family in text_string_to_metric_families(text):
            target = merged.get(family.name)
            if target is None:
                target = Metric(family.name, family.documentation, family.type, family.unit)
                merged[family.name] = target
            target.samples.extend(
                sample._replace(labels={**sample.labels, WORKER_LABEL: worker})
                for sample in family.samples
            )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(list(merged.values())))
    return generate_latest(registry)
