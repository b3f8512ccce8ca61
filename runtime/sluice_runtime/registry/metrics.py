"""Prometheus series for model downloads, registered in a registry the caller owns."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

_DOWNLOAD_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


class RegistryMetrics:
    """Download volume and time, cache hits, retries and verification failures, per scheme."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.download_bytes = Counter(
            "sluice_model_download_bytes",
            "Bytes of model files downloaded from registries.",
            ["scheme"],
            registry=registry,
        )
        self.download_seconds = Histogram(
            "sluice_model_download_seconds",
            "Time to download and verify one model file, retries included.",
            ["scheme"],
            buckets=_DOWNLOAD_BUCKETS,
            registry=registry,
        )
        self.cache_hits = Counter(
            "sluice_model_cache_hits",
            "Model fetches answered from the local content-addressed cache.",
            ["scheme"],
            registry=registry,
        )
        self.download_retries = Counter(
            "sluice_model_download_retries",
            "Download attempts that failed transiently and were retried.",
            ["scheme"],
            registry=registry,
        )
        self.verification_failures = Counter(
            "sluice_model_verification_failures",
            "Downloads or cache entries whose bytes did not match the expected digest.",
            ["scheme"],
            registry=registry,
        )
