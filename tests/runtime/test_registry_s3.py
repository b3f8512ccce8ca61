"""s3:// models against a real MinIO with a versioned bucket."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sluice_runtime.errors import DigestMismatch, ModelLoadError
from sluice_runtime.registry import fetch_model
from sluice_runtime.registry.base import resolve_model
from sluice_runtime.registry.metrics import RegistryMetrics
from sluice_runtime.registry.options import FetchOptions
from sluice_runtime.registry.retry import RetryPolicy

from tests.models import mlp
from tests.runtime.registry_servers import Minio, minio_server, sha256_of, use_only

BUCKET = "models"
KEY = "fraud/model.onnx"
OPTIONS = FetchOptions(read_timeout=20.0, retry=RetryPolicy(attempts=3, base_delay=0.01))


@dataclass(frozen=True)
class Versions:
    """Two versions of one key: their files and the version ids MinIO gave them."""

    files: tuple[Path, Path]
    ids: tuple[str, str]

    def uri(self, index: int) -> str:
        return f"s3://{BUCKET}/{KEY}?versionId={self.ids[index]}"


@pytest.fixture(scope="module")
def minio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Minio]:
    with minio_server(tmp_path_factory.mktemp("minio")) as server:
        yield server


@pytest.fixture(scope="module")
def versions(minio: Minio, tmp_path_factory: pytest.TempPathFactory) -> Versions:
    folder = tmp_path_factory.mktemp("models")
    files = tuple(
        mlp(folder / f"v{seed}.onnx", inputs=16, hidden=32, outputs=3, seed=seed) for seed in (1, 2)
    )
    client = minio.client()
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    ids = tuple(
        client.put_object(Bucket=BUCKET, Key=KEY, Body=path.read_bytes())["VersionId"]
        for path in files
    )
    return Versions(files=(files[0], files[1]), ids=(ids[0], ids[1]))


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, minio: Minio, tmp_path: Path) -> None:
    use_only(minio.env(tmp_path), monkeypatch)


def test_each_version_of_a_key_is_fetched_by_its_version_id(
    tmp_path: Path, versions: Versions
) -> None:
    for index in (0, 1):
        fetched = fetch_model(versions.uri(index), None, tmp_path / "cache", options=OPTIONS)
        assert fetched.path.read_bytes() == versions.files[index].read_bytes()
        assert fetched.digest == sha256_of(versions.files[index])
        assert fetched.uri == versions.uri(index)


def test_a_pinned_version_comes_from_the_cache_on_the_next_start(
    tmp_path: Path, versions: Versions
) -> None:
    registry = CollectorRegistry()
    metrics = RegistryMetrics(registry)
    first = fetch_model(versions.uri(0), None, tmp_path / "cache", metrics, OPTIONS)
    again = fetch_model(versions.uri(0), None, tmp_path / "cache", metrics, OPTIONS)

    assert again.path == first.path
    assert registry.get_sample_value("sluice_model_cache_hits_total", {"scheme": "s3"}) == 1
    downloaded = registry.get_sample_value("sluice_model_download_bytes_total", {"scheme": "s3"})
    assert downloaded == versions.files[0].stat().st_size


def test_a_bare_key_needs_a_digest_and_a_wrong_one_is_refused(
    tmp_path: Path, versions: Versions
) -> None:
    bare, cache = f"s3://{BUCKET}/{KEY}", tmp_path / "cache"
    latest, older = sha256_of(versions.files[1]), sha256_of(versions.files[0])

    with pytest.raises(ModelLoadError, match=r"is not pinned: add \?versionId="):
        fetch_model(bare, None, cache, options=OPTIONS)
    with pytest.raises(DigestMismatch) as mismatch:
        fetch_model(bare, older, cache, options=OPTIONS)
    assert f"expected {older}, got {latest}" in str(mismatch.value)
    assert list((cache / "tmp").iterdir()) == []

    fetched = fetch_model(bare, latest, cache, options=OPTIONS)
    assert fetched.path.read_bytes() == versions.files[1].read_bytes()


def test_resolve_pins_a_bare_key_to_its_current_version(tmp_path: Path, versions: Versions) -> None:
    resolved = resolve_model(f"s3://{BUCKET}/{KEY}", tmp_path / "cache", OPTIONS)
    assert resolved.uri == versions.uri(1)
    assert resolved.digest == sha256_of(versions.files[1])


def test_missing_credentials_fail_at_once_saying_what_to_set(
    tmp_path: Path, versions: Versions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ModelLoadError) as raised:
        fetch_model(versions.uri(0), None, tmp_path / "cache", options=OPTIONS)
    assert str(raised.value) == (
        f"{versions.uri(0)}: no S3 credentials found: set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials, or run with a web "
        "identity or instance role"
    )


def test_wrong_credentials_are_refused_without_echoing_the_secret(
    tmp_path: Path, versions: Versions, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "wrong-secret-" + uuid.uuid4().hex
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    with pytest.raises(ModelLoadError) as raised:
        fetch_model(versions.uri(0), None, tmp_path / "cache", options=OPTIONS)
    assert str(raised.value) == (
        f"{versions.uri(0)}: SignatureDoesNotMatch: access denied; check the credentials "
        "and the bucket policy"
    )
    assert secret not in str(raised.value)


def test_missing_keys_versions_and_buckets_are_named(tmp_path: Path, versions: Versions) -> None:
    digest = sha256_of(versions.files[0])
    cases = [
        (f"s3://{BUCKET}/fraud/absent.onnx", digest, "NoSuchKey"),
        (f"s3://{BUCKET}/{KEY}?versionId={uuid.uuid4()}", None, "NoSuchVersion"),
        (f"s3://no-such-bucket/{KEY}", digest, "NoSuchBucket"),
    ]
    for uri, pin, code in cases:
        with pytest.raises(ModelLoadError) as raised:
            fetch_model(uri, pin, tmp_path / "cache", options=OPTIONS)
        assert str(raised.value).startswith(f"{uri}: {code}: "), str(raised.value)
