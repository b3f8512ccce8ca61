"""Where an MLflow model version's files live, and which of them is the ONNX model.

MLflow answers a model version's download URI in the form its artifact store
uses: `mlflow-artifacts:` (the tracking server proxies the store, the usual
setup), an `s3://` prefix (clients go to the bucket directly) or a local path
(a single-machine setup). Each becomes an `ArtifactStore` that can read the
small `MLmodel` file, list the folder, and open the model file as a `Source`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlsplit

import httpx
import yaml

from sluice_runtime.errors import ModelLoadError
from sluice_runtime.registry.httpclient import HttpSource, check_status, translated_errors
from sluice_runtime.registry.transfer import Body, FetchContext, Source
from sluice_runtime.registry.uris import S3Location, redact

_ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
_CHUNK = 1 << 20


class ArtifactStore(Protocol):
    def read_small(self, name: str) -> bytes | None:
        """A small file's bytes, or None when the folder has no such file."""
        ...

    def names(self) -> list[str]:
        """The files directly in the model version's folder."""
        ...

    def source(self, name: str) -> Source:
        """The file, for streaming into the cache."""
        ...


def onnx_file_from_mlmodel(text: str) -> str | None:
    """The ONNX flavor's data file named in an MLmodel document, if there is one."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if not isinstance(document, dict):
        return None
    flavor = (document.get("flavors") or {}).get("onnx")
    data = flavor.get("data") if isinstance(flavor, dict) else None
    return data if isinstance(data, str) and data else None


def single_onnx(names: list[str], where: str) -> str:
    """The one `.onnx` file among `names`; none or several is an error naming them."""
    candidates = sorted(name for name in names if name.endswith(".onnx"))
    if len(candidates) != 1:
        found = ", ".join(candidates) or "none"
        raise ModelLoadError(f"{where}: expected exactly one .onnx file, found {found}")
    return candidates[0]


def open_store(
    artifact_uri: str, tracking_uri: str, client: httpx.Client, ctx: FetchContext
) -> ArtifactStore:
    """The store for a download URI, refusing schemes the runtime cannot read."""
    parts = urlsplit(artifact_uri)
    if parts.scheme == "mlflow-artifacts":
        tracking = urlsplit(tracking_uri)
        base = f"{tracking.scheme}://{parts.netloc}" if parts.netloc else tracking_uri
        return ProxiedArtifacts(client, base.rstrip("/"), unquote(parts.path).strip("/"))
    if parts.scheme == "s3":
        from sluice_runtime.registry.s3 import make_s3_client

        prefix = unquote(parts.path).strip("/")
        return S3Artifacts(make_s3_client(ctx.options), parts.netloc, prefix)
    if parts.scheme in ("", "file"):
        return LocalArtifacts(Path(unquote(parts.path)))
    raise ModelLoadError(
        f"MLflow artifact location {redact(artifact_uri)!r}: the runtime reads mlflow-artifacts "
        "(served by the tracking server), s3 and local paths only"
    )


class ProxiedArtifacts:
    """Files the tracking server serves from its artifact store (`--serve-artifacts`)."""

    def __init__(self, client: httpx.Client, base: str, path: str) -> None:
        self._client = client
        self._base = base
        self._path = path
        self._hints = {
            401: "set MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD",
            403: "the MLflow credentials do not grant access to these artifacts",
            404: "the model version's files are missing from the artifact store",
        }

    def _url(self, name: str) -> str:
        return f"{self._base}{_ARTIFACTS_API}/{quote(f'{self._path}/{name}')}"

    def read_small(self, name: str) -> bytes | None:
        url = self._url(name)
        with translated_errors(redact(url)):
            response = self._client.get(url)
        if response.status_code == 404:
            return None
        check_status(response, redact(url), self._hints)
        return response.content

    def names(self) -> list[str]:
        url = f"{self._base}{_ARTIFACTS_API}"
        with translated_errors(redact(url)):
            response = self._client.get(url, params={"path": self._path})
        check_status(response, redact(url), self._hints)
        files = response.json().get("files", [])
        return [entry["path"] for entry in files if not entry.get("is_dir")]

    def source(self, name: str) -> Source:
        return HttpSource(self._client, self._url(name), self._hints)


class S3Artifacts:
    """Files under an s3:// prefix the tracking server only points at."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix

    def _location(self, name: str) -> S3Location:
        return S3Location(self._bucket, f"{self._prefix}/{name}", None)

    def read_small(self, name: str) -> bytes | None:
        from botocore.exceptions import ClientError

        from sluice_runtime.registry.s3 import translated_errors as s3_errors

        location = self._location(name)
        with s3_errors(location.uri()):
            try:
                response = self._client.get_object(Bucket=self._bucket, Key=location.key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return None
                raise
            return bytes(response["Body"].read())

    def names(self) -> list[str]:
        from sluice_runtime.registry.s3 import translated_errors as s3_errors

        with s3_errors(f"s3://{self._bucket}/{self._prefix}/"):
            listing = self._client.list_objects_v2(
                Bucket=self._bucket, Prefix=f"{self._prefix}/", Delimiter="/"
            )
        return [item["Key"].rsplit("/", 1)[-1] for item in listing.get("Contents", [])]

    def source(self, name: str) -> Source:
        from sluice_runtime.registry.s3 import S3Source

        return S3Source(self._client, self._location(name))


class LocalArtifacts:
    """A folder on this machine: the tracking server and the runtime share a disk."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def read_small(self, name: str) -> bytes | None:
        path = self._root / name
        return path.read_bytes() if path.is_file() else None

    def names(self) -> list[str]:
        if not self._root.is_dir():
            raise ModelLoadError(f"MLflow artifact folder {self._root} does not exist")
        return [entry.name for entry in self._root.iterdir() if entry.is_file()]

    def source(self, name: str) -> Source:
        return _FileSource(self._root / name)


class _FileSource:
    """A local file copied into the cache, so later changes to it cannot reach the server."""

    def __init__(self, path: Path) -> None:
        self._path = path

    @property
    def display(self) -> str:
        return str(self._path)

    @contextmanager
    def open(self, offset: int) -> Iterator[Body]:
        try:
            handle = self._path.open("rb")
        except OSError as exc:
            raise ModelLoadError(f"{self._path}: {exc.strerror}") from None
        with handle:
            handle.seek(offset)
            length = self._path.stat().st_size - offset
            yield Body(offset, length, iter(lambda: handle.read(_CHUNK), b""))
