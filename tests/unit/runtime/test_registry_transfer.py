"""The cache and the download loop, driven by an in-memory `Source` scripted to misbehave."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sluice_runtime.errors import DigestMismatch, ModelLoadError
from sluice_runtime.registry.cache import ModelCache, lock_name
from sluice_runtime.registry.metrics import RegistryMetrics
from sluice_runtime.registry.options import FetchOptions
from sluice_runtime.registry.retry import RetryPolicy, TransientError
from sluice_runtime.registry.transfer import (
    Body,
    CachedFile,
    FetchContext,
    Source,
    fetch_to_cache,
)

DATA = os.urandom(1000)
DIGEST = f"sha256:{hashlib.sha256(DATA).hexdigest()}"


class MemorySource:
    """`DATA` from memory; the first open breaks off after `cut` bytes if asked to."""

    def __init__(
        self, cut: int | None = None, ignore_range: bool = False, short: bool = False
    ) -> None:
        self.cut = cut
        self.ignore_range = ignore_range
        self.short = short
        self.opens: list[int] = []

    @property
    def display(self) -> str:
        return "mem://model"

    @contextmanager
    def open(self, offset: int) -> Iterator[Body]:
        self.opens.append(offset)
        start = 0 if self.ignore_range else offset
        first = len(self.opens) == 1

        def chunks() -> Iterator[bytes]:
            end = len(DATA)
            if first and self.cut is not None:
                end = self.cut
            for position in range(start, end, 64):
                yield DATA[position : min(position + 64, end)]
            if first and self.cut is not None and not self.short:
                raise TransientError("connection reset")

        yield Body(start, len(DATA) - start, chunks())


def context(tmp_path: Path) -> tuple[FetchContext, CollectorRegistry]:
    registry = CollectorRegistry()
    ctx = FetchContext(
        cache=ModelCache(tmp_path / "cache"),
        options=FetchOptions(retry=RetryPolicy(attempts=3, base_delay=0.0)),
        metrics=RegistryMetrics(registry),
        sleep=lambda _: None,
    )
    return ctx, registry


def fetch(
    ctx: FetchContext, source: Source, expected: str | None = DIGEST, ref: str | None = None
) -> CachedFile:
    return fetch_to_cache(ctx, "mem", "mem://model", lambda: source, expected, ref)


def never() -> Source:
    raise AssertionError("a cache hit must not open the source")


def count(registry: CollectorRegistry, name: str) -> float:
    return registry.get_sample_value(name, {"scheme": "mem"}) or 0.0


def test_a_download_lands_under_its_digest_read_only_and_is_found_again(tmp_path: Path) -> None:
    ctx, registry = context(tmp_path)
    fetched = fetch(ctx, MemorySource())
    assert fetched.path == tmp_path / "cache" / "sha256" / DIGEST.removeprefix("sha256:")
    assert fetched.path.read_bytes() == DATA
    assert fetched.path.stat().st_mode & 0o222 == 0

    again = fetch_to_cache(ctx, "mem", "mem://model", never, DIGEST, None)
    assert again == fetched
    assert count(registry, "sluice_model_cache_hits_total") == 1
    assert count(registry, "sluice_model_download_bytes_total") == len(DATA)


def test_a_broken_transfer_resumes_from_where_it_stopped(tmp_path: Path) -> None:
    ctx, registry = context(tmp_path)
    source = MemorySource(cut=320)
    assert fetch(ctx, source).path.read_bytes() == DATA
    assert source.opens == [0, 320]
    assert count(registry, "sluice_model_download_retries_total") == 1


def test_a_server_that_ignores_the_range_restarts_the_file(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path)
    source = MemorySource(cut=320, ignore_range=True)
    assert fetch(ctx, source).path.read_bytes() == DATA
    assert source.opens == [0, 320]


def test_a_body_shorter_than_announced_is_retried(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path)
    source = MemorySource(cut=500, short=True)
    assert fetch(ctx, source).path.read_bytes() == DATA
    assert source.opens == [0, 500]


def test_a_mismatch_keeps_nothing_and_names_both_digests(tmp_path: Path) -> None:
    ctx, registry = context(tmp_path)
    wrong = "sha256:" + "0" * 64
    with pytest.raises(DigestMismatch) as raised:
        fetch(ctx, MemorySource(), expected=wrong)
    assert str(raised.value) == (
        f"digest mismatch for mem://model: expected {wrong}, got {DIGEST}; refusing to serve"
    )
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []
    assert not (tmp_path / "cache" / "sha256").exists()
    assert count(registry, "sluice_model_verification_failures_total") == 1


def test_a_corrupted_cache_entry_is_fetched_again(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path)
    path = fetch(ctx, MemorySource()).path
    path.chmod(0o644)
    path.write_bytes(b"bit rot")
    source = MemorySource()
    assert fetch(ctx, source).path.read_bytes() == DATA
    assert source.opens == [0]


def test_a_pinned_reference_remembers_its_digest(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path)
    first = fetch(ctx, MemorySource(), expected=None, ref="s3|e|s3://b/k?versionId=1")
    again = fetch_to_cache(ctx, "mem", "k", never, None, "s3|e|s3://b/k?versionId=1")
    assert again == first
    assert ctx.cache.ref("s3|e|s3://b/k?versionId=2") is None


def test_the_last_failure_is_reported_once_the_attempts_are_spent(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path)

    class Failing(MemorySource):
        @contextmanager
        def open(self, offset: int) -> Iterator[Body]:
            self.opens.append(offset)
            raise TransientError("503 Service Unavailable")
            yield  # pragma: no cover

    source = Failing()
    with pytest.raises(ModelLoadError, match="giving up after 3 attempt"):
        fetch(ctx, source)
    assert source.opens == [0, 0, 0]


def test_locks_are_named_by_digest_else_by_what_is_fetched() -> None:
    assert lock_name(DIGEST, "x") == DIGEST.removeprefix("sha256:")
    assert lock_name(None, "x") == "ref-" + hashlib.sha256(b"x").hexdigest()
