"""Parsing model URIs and the rules that decide whether one is pinned.

Pure functions only: the registries call these before any I/O, so a mutable
reference is refused (or, for `resolve`, recognised) without touching the
network, and every message shows the URI through `redact`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from sluice_runtime.errors import ModelLoadError

# Query parameters that name what to fetch rather than who may fetch it.
_PUBLIC_QUERY_KEYS = frozenset({"versionId", "name", "version", "alias", "stages", "path"})
_VERSION = re.compile(r"^[1-9][0-9]*$")
# MLflow's deprecated stages and its `latest` pseudo-version: both move.
_MOVING_VERSIONS = frozenset({"latest", "none", "staging", "production", "archived"})


def redact(uri: str) -> str:
    """The URI with user:password and credential-bearing query values masked.

    Presigned URLs carry signatures and tokens in the query string, so every
    query value except the ones known to be public is replaced.
    """
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<unparseable uri>"
    if "@" not in parts.netloc and not parts.query:
        return uri
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode(
        [(key, value if key in _PUBLIC_QUERY_KEYS else "***") for key, value in pairs],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@dataclass(frozen=True, slots=True)
class S3Location:
    """An object in an S3-compatible bucket, optionally pinned to one object version."""

    bucket: str
    key: str
    version_id: str | None

    def uri(self) -> str:
        """The canonical s3:// URI, with `?versionId=` when pinned."""
        base = f"s3://{self.bucket}/{quote(self.key)}"
        if self.version_id is None:
            return base
        return f"{base}?{urlencode({'versionId': self.version_id})}"


def parse_s3(uri: str) -> S3Location:
    """Split s3://bucket/key[?versionId=...]; anything else in the query is refused."""
    parts = urlsplit(uri)
    if parts.scheme != "s3":
        raise ModelLoadError(f"model uri {redact(uri)!r}: expected the s3:// scheme")
    key = unquote(parts.path).lstrip("/")
    if not parts.netloc or not key:
        raise ModelLoadError(f"model uri {redact(uri)!r}: expected s3://<bucket>/<key>")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(query) - {"versionId"})
    if unknown:
        raise ModelLoadError(
            f"model uri {redact(uri)!r}: unsupported query parameter(s) {', '.join(unknown)}; "
            "only versionId is understood"
        )
    version_id = query.get("versionId")
    if version_id == "":
        raise ModelLoadError(f"model uri {redact(uri)!r}: versionId is empty")
    return S3Location(bucket=parts.netloc, key=key, version_id=version_id)


def require_s3_pin(location: S3Location, uri: str, digest: str | None) -> None:
    """A bare key can be overwritten under a running service: insist on a version or digest."""
    if location.version_id is None and digest is None:
        raise ModelLoadError(
            f"model uri {redact(uri)!r} is not pinned: add ?versionId=<object version> or a "
            "digest (`sluice-runtime resolve` prints both)"
        )


def require_http_digest(uri: str, digest: str | None) -> None:
    """What an http(s) URL serves can change at any time; only a digest pins it."""
    if digest is None:
        raise ModelLoadError(
            f"model uri {redact(uri)!r} is not pinned: http(s) models need a digest "
            "(`sluice-runtime resolve` prints it)"
        )


@dataclass(frozen=True, slots=True)
class MlflowModelRef:
    """A registered model and one of: a version number, an alias, or a moving version name."""

    name: str
    version: str | None = None
    alias: str | None = None
    moving: str | None = None

    @property
    def pinned(self) -> bool:
        return self.version is not None

    def uri(self) -> str:
        """The canonical mlflow:// form of this reference."""
        name = quote(self.name, safe="")
        if self.version is not None:
            return f"mlflow://{name}/{self.version}"
        if self.alias is not None:
            return f"mlflow://{name}@{quote(self.alias, safe='')}"
        return f"mlflow://{name}/{self.moving}"


def parse_mlflow(uri: str) -> MlflowModelRef:
    """Parse mlflow://name/version, mlflow://name@alias and MLflow's models:/ equivalents."""
    parts = urlsplit(uri)
    if parts.scheme not in ("mlflow", "models"):
        raise ModelLoadError(f"model uri {redact(uri)!r}: expected mlflow:// or models:/")
    if parts.query or parts.fragment:
        raise ModelLoadError(f"model uri {redact(uri)!r}: query and fragment are not supported")
    body = (parts.netloc + parts.path).strip("/")
    if "@" in body and "/" not in body:
        name, alias = body.split("@", 1)
        if not name or not alias:
            raise ModelLoadError(f"model uri {uri!r}: expected <name>@<alias>")
        return MlflowModelRef(name=unquote(name), alias=unquote(alias))
    segments = body.split("/")
    if len(segments) != 2 or not all(segments):
        raise ModelLoadError(
            f"model uri {uri!r}: expected mlflow://<registered-model>/<version> "
            "or mlflow://<registered-model>@<alias>"
        )
    name, version = unquote(segments[0]), unquote(segments[1])
    if _VERSION.match(version):
        return MlflowModelRef(name=name, version=version)
    if version.lower() in _MOVING_VERSIONS:
        return MlflowModelRef(name=name, moving=version)
    raise ModelLoadError(
        f"model uri {uri!r}: version {version!r} is not a version number, "
        "an alias (name@alias), a stage or 'latest'"
    )


def require_mlflow_pin(ref: MlflowModelRef, uri: str) -> None:
    """Aliases and stages are reassigned in the registry; a server must name a version."""
    if not ref.pinned:
        what = f"alias {ref.alias!r}" if ref.alias is not None else f"{ref.moving!r}"
        raise ModelLoadError(
            f"model uri {uri!r} is not pinned: {what} can move to another version; "
            f"name a version number (`sluice-runtime resolve {uri}` prints the pinned uri)"
        )
