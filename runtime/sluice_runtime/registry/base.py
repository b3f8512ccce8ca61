"""The registry interface and the scheme dispatch: the one entry point the runtime calls."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sluice_runtime.digest import parse_digest
from sluice_runtime.errors import ModelLoadError

if TYPE_CHECKING:
    from sluice_runtime.registry.metrics import RegistryMetrics
    from sluice_runtime.registry.options import FetchOptions
    from sluice_runtime.registry.transfer import FetchContext


@dataclass(frozen=True, slots=True)
class FetchedModel:
    """A model file on local disk whose bytes hash to `digest`; `uri` is the pinned URI."""

    uri: str
    path: Path
    digest: str


class Registry(Protocol):
    """One URI scheme: fetch a pinned model, or pin a moving reference first (`resolve`)."""

    def fetch(self, uri: str, digest: str | None, ctx: FetchContext) -> FetchedModel:
        """Return the verified local model; refuse an unpinned URI with ModelLoadError."""
        ...

    def resolve(self, uri: str, ctx: FetchContext) -> FetchedModel:
        """Pin `uri` (an alias, a bare key, a URL) and fetch it; `.uri` is the pinned form."""
        ...


def _registry(uri: str) -> Registry:
    # Imported on use, so a scheme's client library (boto3, httpx) loads only when needed.
    scheme = uri.split(":", 1)[0].lower() if ":" in uri else ""
    if scheme in ("file", "pvc"):
        from sluice_runtime.registry.local import LocalRegistry

        return LocalRegistry()
    if scheme in ("https", "http"):
        from sluice_runtime.registry.https import HttpsRegistry

        return HttpsRegistry()
    if scheme == "s3":
        from sluice_runtime.registry.s3 import S3Registry

        return S3Registry()
    if scheme in ("mlflow", "models"):
        from sluice_runtime.registry.mlflow import MlflowRegistry

        return MlflowRegistry(os.environ)
    from sluice_runtime.registry.uris import redact

    raise ModelLoadError(
        f"model uri {redact(uri)!r}: unsupported scheme {scheme!r} "
        "(file, pvc, https, http, s3, mlflow, models)"
    )


def _context(
    cache_dir: Path, metrics: RegistryMetrics | None, options: FetchOptions | None
) -> FetchContext:
    from sluice_runtime.registry.cache import ModelCache
    from sluice_runtime.registry.options import FetchOptions
    from sluice_runtime.registry.transfer import FetchContext

    resolved = options if options is not None else FetchOptions.from_env(os.environ)
    if metrics is None:
        return FetchContext(cache=ModelCache(cache_dir), options=resolved)
    return FetchContext(cache=ModelCache(cache_dir), options=resolved, metrics=metrics)


def fetch_model(
    uri: str,
    digest: str | None,
    cache_dir: Path,
    metrics: RegistryMetrics | None = None,
    options: FetchOptions | None = None,
) -> FetchedModel:
    """Fetch the model a pinned `uri` names and verify it against `digest` when given.

    Options default to the SLUICE_* environment (see `FetchOptions.from_env`).
    """
    try:
        pinned = None if digest is None else parse_digest(digest)
    except ValueError as exc:
        raise ModelLoadError(f"digest: {exc}") from None
    return _registry(uri).fetch(uri, pinned, _context(cache_dir, metrics, options))


def resolve_model(uri: str, cache_dir: Path, options: FetchOptions | None = None) -> FetchedModel:
    """Pin a possibly moving `uri` and fetch it, for `sluice-runtime resolve`."""
    return _registry(uri).resolve(uri, _context(cache_dir, None, options))
