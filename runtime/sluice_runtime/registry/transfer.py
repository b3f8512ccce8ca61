"""Streaming a remote object into the cache: retry, resume, hash, verify, publish.

Every remote scheme supplies a `Source` (how to open the object's bytes from an
offset, translating its client's errors into TransientError or ModelLoadError)
and this module does the rest the same way for all of them.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from filelock import BaseFileLock, Timeout
from prometheus_client import CollectorRegistry

from sluice_runtime.errors import DigestMismatch
from sluice_runtime.registry.cache import ModelCache, PartialDownload, lock_name
from sluice_runtime.registry.metrics import RegistryMetrics
from sluice_runtime.registry.options import FetchOptions
from sluice_runtime.registry.retry import TransientError, run_with_retries

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Body:
    """An open response: where its bytes start in the object, how many follow, the bytes."""

    offset: int
    length: int | None
    chunks: Iterable[bytes]


class Source(Protocol):
    """One remote object, opened from a byte offset (0, or where a failed try stopped)."""

    @property
    def display(self) -> str:
        """The object's URI with credentials masked, for logs and errors."""
        ...

    def open(self, offset: int) -> AbstractContextManager[Body]:
        """Open the bytes from `offset`; a server may answer with the whole object instead."""
        ...


@dataclass(frozen=True, slots=True)
class FetchContext:
    """Everything a registry needs besides the URI: cache, options, metrics, time."""

    cache: ModelCache
    options: FetchOptions = field(default_factory=FetchOptions)
    metrics: RegistryMetrics = field(default_factory=lambda: RegistryMetrics(CollectorRegistry()))
    sleep: Callable[[float], None] = time.sleep
    random: Callable[[], float] = random.random
    clock: Callable[[], float] = time.monotonic


@dataclass(frozen=True, slots=True)
class CachedFile:
    path: Path
    digest: str


def fetch_to_cache(
    ctx: FetchContext,
    scheme: str,
    key: str,
    make_source: Callable[[], Source],
    expected: str | None,
    reference: str | None,
) -> CachedFile:
    """Return the cached file for the object, downloading it at most once.

    `expected` is the pinned digest, if any. `reference` names an immutable
    object version (it is recorded with the digest it hashed to, so the next
    start finds it without a digest); None for mutable objects. `key` names what
    is fetched, for the lock when no digest is known. `make_source` is called
    only on a miss, so a cache hit costs no network call at all.
    """
    hit = _lookup(ctx, scheme, expected, reference)
    if hit is not None:
        return hit
    name = lock_name(expected, key)
    with _exclusive(ctx.cache.lock(name), key):
        # Whoever held the lock before us may have just fetched it.
        hit = _lookup(ctx, scheme, expected, reference)
        if hit is not None:
            return hit
        source = make_source()
        started = ctx.clock()
        with ctx.cache.partial(name) as partial:
            _download(ctx, scheme, source, partial)
            actual = partial.digest()
            if expected is not None and actual != expected:
                ctx.metrics.verification_failures.labels(scheme).inc()
                raise DigestMismatch(source.display, expected, actual)
            path = ctx.cache.commit(partial, actual)
        if reference is not None:
            ctx.cache.set_ref(reference, actual)
        seconds = ctx.clock() - started
        ctx.metrics.download_seconds.labels(scheme).observe(seconds)
        log.info(
            "fetched %s (%d bytes, %s) in %.1fs", source.display, partial.size, actual, seconds
        )
        return CachedFile(path=path, digest=actual)


@contextmanager
def _exclusive(lock: BaseFileLock, key: str) -> Iterator[None]:
    """Hold `lock`, saying so in the log when another process holds it first."""
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("%s is being fetched by another process; waiting for it", key)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _lookup(
    ctx: FetchContext, scheme: str, expected: str | None, reference: str | None
) -> CachedFile | None:
    digest = expected
    if digest is None and reference is not None:
        digest = ctx.cache.ref(reference)
    if digest is None:
        return None
    path = ctx.cache.verified_blob(digest)
    if path is None:
        return None
    ctx.metrics.cache_hits.labels(scheme).inc()
    log.info("model %s found in cache at %s", digest, path)
    return CachedFile(path=path, digest=digest)


def _download(ctx: FetchContext, scheme: str, source: Source, partial: PartialDownload) -> None:
    """Stream the object into `partial`, resuming from where a failed try stopped."""

    downloaded = ctx.metrics.download_bytes.labels(scheme)

    def attempt(_: int) -> None:
        with source.open(partial.size) as body:
            if body.offset != partial.size:
                partial.restart()
            end = None if body.length is None else body.offset + body.length
            for chunk in body.chunks:
                partial.write(chunk)
                downloaded.inc(len(chunk))
        if end is not None and partial.size != end:
            raise TransientError(f"connection closed after {partial.size} of {end} bytes")

    run_with_retries(
        attempt,
        ctx.options.retry,
        f"fetching {source.display}",
        sleep=ctx.sleep,
        random=ctx.random,
        on_retry=ctx.metrics.download_retries.labels(scheme).inc,
    )
