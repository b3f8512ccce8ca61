"""The content-addressed model cache: `<root>/sha256/<hex>`, written only by atomic rename.

Layout under the cache root:

- `sha256/<hex>`  a verified model file, named by its digest, never written in place;
- `refs/<hash>`   the digest a pinned reference (an S3 object version, an MLflow model
                  version) resolved to, so a restart without a digest downloads nothing;
- `locks/<name>.lock`  one OS file lock per digest or reference, held while downloading;
- `tmp/<name>.part`    the download in progress for that lock (same file system as the
                  blobs, so the final rename is atomic; a crashed download is overwritten
                  by the next one instead of piling up).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from types import TracebackType

from filelock import FileLock

from sluice_runtime.digest import parse_digest, sha256_file

log = logging.getLogger(__name__)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` survive a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PartialDownload:
    """A file being downloaded, hashed as it is written.

    Used as a context manager: the file is deleted on exit unless `ModelCache.commit`
    moved it into place, so no failure path leaves unverified bytes behind.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("wb")
        self._hasher = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._hasher.update(chunk)
        self.size += len(chunk)

    def restart(self) -> None:
        """Drop what was written: the server answered a resume with the whole object."""
        self._file.seek(0)
        self._file.truncate()
        self._hasher = hashlib.sha256()
        self.size = 0

    def digest(self) -> str:
        return f"sha256:{self._hasher.hexdigest()}"

    def finish(self) -> None:
        """Flush and fsync, so the bytes are on disk before the rename publishes them."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def discard(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> PartialDownload:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self._file.closed or self.path.exists():
            self.discard()


class ModelCache:
    """Verified model files named by digest, shared safely by concurrent processes."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def blob_path(self, digest: str) -> Path:
        return self.root / "sha256" / parse_digest(digest).split(":", 1)[1]

    def lock(self, name: str) -> FileLock:
        """An OS-level lock (released if the holder dies) serialising work on `name`."""
        locks = self.root / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        return FileLock(locks / f"{name}.lock")

    def verified_blob(self, digest: str) -> Path | None:
        """The cached file for `digest` if present and still hashing to it.

        A cached file is re-hashed before each use: it is cheap next to the
        download it saves, and a corrupted or tampered cache is never served.
        Such an entry is deleted and reported as a miss.
        """
        path = self.blob_path(digest)
        if not path.is_file():
            return None
        actual = sha256_file(path)
        if actual == parse_digest(digest):
            return path
        log.warning("cache entry %s hashes to %s; deleting it and fetching again", path, actual)
        path.unlink(missing_ok=True)
        return None

    def ref(self, reference: str) -> str | None:
        """The digest recorded for a pinned reference, if any."""
        try:
            return parse_digest(self._ref_path(reference).read_text())
        except (OSError, ValueError):
            return None

    def set_ref(self, reference: str, digest: str) -> None:
        path = self._ref_path(reference)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(parse_digest(digest))
        os.replace(temporary, path)

    def partial(self, name: str) -> PartialDownload:
        """A fresh download file for the holder of lock `name`."""
        directory = self.root / "tmp"
        directory.mkdir(parents=True, exist_ok=True)
        return PartialDownload(directory / f"{name}.part")

    def commit(self, partial: PartialDownload, digest: str) -> Path:
        """fsync the download and rename it to its digest's name."""
        partial.finish()
        os.chmod(partial.path, 0o444)  # a published entry is never written again
        target = self.blob_path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial.path, target)
        _fsync_dir(target.parent)
        return target

    def _ref_path(self, reference: str) -> Path:
        return self.root / "refs" / hashlib.sha256(reference.encode()).hexdigest()


def lock_name(digest: str | None, key: str) -> str:
    """Name the lock after the digest when known, else after what is being fetched."""
    if digest is not None:
        return parse_digest(digest).split(":", 1)[1]
    return "ref-" + hashlib.sha256(key.encode()).hexdigest()
