"""file:// and pvc:// — a model already on a local or mounted filesystem."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, unquote, urlsplit

from sluice_runtime.digest import sha256_file, verify
from sluice_runtime.errors import DigestMismatch, ModelLoadError
from sluice_runtime.registry.base import FetchedModel

if TYPE_CHECKING:
    from sluice_runtime.registry.transfer import FetchContext

# The operator mounts a PersistentVolumeClaim named <claim> at /mnt/pvc/<claim>.
PVC_MOUNT_ROOT = Path("/mnt/pvc")


def find_onnx(path: Path, uri: str) -> Path:
    """A `.onnx` file itself, or the single `.onnx` file inside a folder."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise ModelLoadError(f"model uri {uri!r}: {path} does not exist")
    candidates = sorted(path.glob("*.onnx"))
    if len(candidates) != 1:
        found = ", ".join(p.name for p in candidates) or "none"
        raise ModelLoadError(
            f"model uri {uri!r}: expected exactly one .onnx file in {path}, found {found}"
        )
    return candidates[0]


def local_path(parts: SplitResult) -> Path:
    """Map file:///abs/path and pvc://claim/path to a filesystem path."""
    if parts.scheme == "pvc":
        return PVC_MOUNT_ROOT / parts.netloc / unquote(parts.path).lstrip("/")
    return Path(unquote(parts.netloc + parts.path))


class LocalRegistry:
    """Hashes the file where it lies; nothing is copied. A path is its own pin."""

    def fetch(self, uri: str, digest: str | None, ctx: FetchContext) -> FetchedModel:
        model = find_onnx(local_path(urlsplit(uri)), uri)
        actual = sha256_file(model)
        try:
            verify(uri, digest, actual)
        except DigestMismatch:
            ctx.metrics.verification_failures.labels(urlsplit(uri).scheme).inc()
            raise
        return FetchedModel(uri=uri, path=model, digest=actual)

    def resolve(self, uri: str, ctx: FetchContext) -> FetchedModel:
        return self.fetch(uri, None, ctx)
