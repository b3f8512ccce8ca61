"""The registry interface and the scheme dispatch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import SplitResult, urlsplit

from sluice_runtime.errors import ModelLoadError


@dataclass(frozen=True, slots=True)
class FetchedModel:
    """A model file on local disk whose bytes hash to `digest`."""

    uri: str
    path: Path
    digest: str


class Registry(Protocol):
    """Fetches the model a URI names and verifies it against `digest` when one is pinned."""

    def fetch(
        self, uri: str, parts: SplitResult, digest: str | None, cache_dir: Path
    ) -> FetchedModel:
        """Return the verified local model, or raise ModelLoadError with the reason."""
        ...


def _registries() -> dict[str, Registry]:
    # Imported here so a scheme's client library loads only when that scheme is used.
    from sluice_runtime.registry.local import LocalRegistry

    local = LocalRegistry()
    return {"file": local, "pvc": local}


def fetch_model(uri: str, digest: str | None, cache_dir: Path) -> FetchedModel:
    """Resolve `uri` through the registry for its scheme and return the verified model."""
    parts = urlsplit(uri)
    registry = _registries().get(parts.scheme)
    if registry is None:
        raise ModelLoadError(f"model uri {uri!r}: unsupported scheme {parts.scheme!r}")
    return registry.fetch(uri, parts, digest, cache_dir)
