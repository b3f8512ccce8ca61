"""sha256 digests in the `sha256:<64 hex>` form used by manifests and flags."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from sluice_runtime.errors import DigestMismatch

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_CHUNK = 1 << 20


def parse_digest(value: str) -> str:
    """Return `value` normalised to lower case, or raise ValueError naming the expected form."""
    normalised = value.strip().lower()
    if not _DIGEST.match(normalised):
        raise ValueError(f"digest {value!r} is not of the form sha256:<64 hex digits>")
    return normalised


def sha256_file(path: Path) -> str:
    """Hash a file in chunks, so a large model never sits in memory."""
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    return f"sha256:{hasher.hexdigest()}"


def verify(uri: str, expected: str | None, actual: str) -> None:
    """Raise DigestMismatch when a pinned digest is given and differs from `actual`."""
    if expected is not None and parse_digest(expected) != actual:
        raise DigestMismatch(uri, parse_digest(expected), actual)
