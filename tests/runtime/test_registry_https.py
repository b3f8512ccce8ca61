"""https:// models against a real TLS server on 127.0.0.1 with a CA made for the test."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sluice_runtime.errors import DigestMismatch, ModelLoadError
from sluice_runtime.registry import fetch_model
from sluice_runtime.registry.metrics import RegistryMetrics
from sluice_runtime.registry.options import FetchOptions
from sluice_runtime.registry.retry import RetryPolicy

from tests.models import mlp
from tests.runtime.registry_servers import FileServer, Route, Tls, file_server, make_tls, sha256_of

TOKEN = "tok-0123456789-secret"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def server(tls: Tls) -> Iterator[FileServer]:
    with file_server(tls) as running:
        yield running


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return mlp(tmp_path / "source" / "fraud.onnx", inputs=32, hidden=128, outputs=4, seed=7)


def options(tls: Tls | None, token_file: Path | None = None) -> FetchOptions:
    return FetchOptions(
        ca_bundle=None if tls is None else tls.ca,
        bearer_token_file=token_file,
        read_timeout=20.0,
        retry=RetryPolicy(attempts=3, base_delay=0.01),
    )


def sample(registry: CollectorRegistry, name: str) -> float:
    return registry.get_sample_value(name, {"scheme": "https"}) or 0.0


def test_a_model_is_fetched_over_tls_verified_and_cached(
    tmp_path: Path, tls: Tls, server: FileServer, model: Path
) -> None:
    server.routes["/models/fraud.onnx"] = Route(file=model)
    registry = CollectorRegistry()
    metrics = RegistryMetrics(registry)
    uri, digest, cache = server.url("/models/fraud.onnx"), sha256_of(model), tmp_path / "cache"

    first = fetch_model(uri, digest, cache, metrics, options(tls))
    again = fetch_model(uri, digest, cache, metrics, options(tls))

    assert first.digest == again.digest == digest
    assert first.path == again.path == cache / "sha256" / digest.removeprefix("sha256:")
    assert first.path.read_bytes() == model.read_bytes()
    assert len(server.hits("/models/fraud.onnx")) == 1
    assert sample(registry, "sluice_model_download_bytes_total") == model.stat().st_size
    assert sample(registry, "sluice_model_cache_hits_total") == 1
    assert sample(registry, "sluice_model_download_seconds_count") == 1
    assert list((cache / "tmp").iterdir()) == []


def test_an_https_uri_without_a_digest_is_refused_before_any_request(
    tmp_path: Path, tls: Tls, server: FileServer
) -> None:
    with pytest.raises(ModelLoadError, match=r"is not pinned: http\(s\) models need a digest"):
        fetch_model(server.url("/m.onnx"), None, tmp_path / "cache", options=options(tls))
    assert server.requests == []


def test_a_wrong_digest_is_refused_and_the_download_deleted(
    tmp_path: Path, tls: Tls, server: FileServer, model: Path
) -> None:
    server.routes["/m.onnx"] = Route(file=model)
    other = mlp(tmp_path / "other.onnx", inputs=32, hidden=128, outputs=4, seed=8)
    registry = CollectorRegistry()
    cache = tmp_path / "cache"

    with pytest.raises(DigestMismatch) as raised:
        fetch_model(
            server.url("/m.onnx"), sha256_of(other), cache, RegistryMetrics(registry), options(tls)
        )

    assert f"expected {sha256_of(other)}, got {sha256_of(model)}" in str(raised.value)
    assert not (cache / "sha256").exists() or list((cache / "sha256").iterdir()) == []
    assert list((cache / "tmp").iterdir()) == []
    assert sample(registry, "sluice_model_verification_failures_total") == 1


def test_an_untrusted_certificate_fails_at_once_with_the_remedy(
    tmp_path: Path, server: FileServer, model: Path
) -> None:
    server.routes["/m.onnx"] = Route(file=model)
    with pytest.raises(ModelLoadError) as raised:
        fetch_model(server.url("/m.onnx"), sha256_of(model), tmp_path / "c", options=options(None))
    message = str(raised.value)
    assert "TLS certificate verification failed" in message
    assert "--ca-bundle" in message
    assert "giving up" not in message


def test_redirects_are_followed_and_the_token_stays_with_its_origin(
    tmp_path: Path, tls: Tls, server: FileServer, model: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    with file_server(tls) as blobs:
        blobs.routes["/blob/1"] = Route(file=model)
        server.routes["/private/fraud.onnx"] = Route(token=TOKEN, redirect=blobs.url("/blob/1"))
        fetched = fetch_model(
            server.url("/private/fraud.onnx"),
            sha256_of(model),
            tmp_path / "cache",
            options=options(tls, token_file),
        )
        blob_requests = blobs.hits("/blob/1")

    assert fetched.path.read_bytes() == model.read_bytes()
    assert server.hits("/private/fraud.onnx")[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert len(blob_requests) == 1
    assert "authorization" not in blob_requests[0].headers


def test_a_connection_dropped_mid_body_is_resumed_where_it_stopped(
    tmp_path: Path, tls: Tls, server: FileServer, model: Path
) -> None:
    cut = model.stat().st_size // 3
    server.routes["/m.onnx"] = Route(file=model, drop_after=cut)
    registry = CollectorRegistry()

    fetched = fetch_model(
        server.url("/m.onnx"),
        sha256_of(model),
        tmp_path / "cache",
        RegistryMetrics(registry),
        options(tls),
    )

    assert fetched.path.read_bytes() == model.read_bytes()
    first, second = server.hits("/m.onnx")
    assert "range" not in first.headers
    assert second.headers["range"] == f"bytes={cut}-"
    assert sample(registry, "sluice_model_download_retries_total") == 1
    assert sample(registry, "sluice_model_download_bytes_total") == model.stat().st_size


def test_a_server_that_always_fails_is_given_up_on_after_the_bounded_attempts(
    tmp_path: Path, tls: Tls, server: FileServer
) -> None:
    server.routes["/m.onnx"] = Route(status=500)
    digest = "sha256:" + "0" * 64
    with pytest.raises(ModelLoadError, match=r"giving up after 3 attempt\(s\).*500"):
        fetch_model(server.url("/m.onnx"), digest, tmp_path / "cache", options=options(tls))
    assert len(server.hits("/m.onnx")) == 3


def test_missing_files_and_refused_credentials_fail_at_once_naming_the_uri(
    tmp_path: Path, tls: Tls, server: FileServer, model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    digest, cache = sha256_of(model), tmp_path / "cache"
    server.routes["/private.onnx"] = Route(file=model, token="the-right-one")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    presigned = server.url("/gone.onnx") + "?X-Amz-Signature=sig-topsecret&versionId=7"

    with pytest.raises(ModelLoadError) as missing:
        fetch_model(presigned, digest, cache, options=options(tls))
    with pytest.raises(ModelLoadError) as anonymous:
        fetch_model(server.url("/private.onnx"), digest, cache, options=options(tls))
    with pytest.raises(ModelLoadError) as refused:
        fetch_model(server.url("/private.onnx"), digest, cache, options=options(tls, token_file))

    assert str(missing.value) == (
        f"{server.url('/gone.onnx')}?X-Amz-Signature=***&versionId=7: 404 Not Found: "
        "no file at this URL"
    )
    assert "401 Unauthorized" in str(anonymous.value)
    assert "--bearer-token-file" in str(anonymous.value)
    assert "the bearer token was refused" in str(refused.value)
    assert len(server.hits("/gone.onnx")) == 1
    assert len(server.hits("/private.onnx")) == 2
    for secret in (TOKEN, "sig-topsecret"):
        assert secret not in str(refused.value)
        assert secret not in caplog.text
