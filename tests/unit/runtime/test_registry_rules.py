"""Pure decisions of the registries: what a status means, which file is the model, settings."""

from __future__ import annotations

import datetime
from pathlib import Path

import httpx
import pytest
from sluice_runtime.errors import ModelLoadError
from sluice_runtime.registry.commands import place
from sluice_runtime.registry.httpclient import check_status, parse_retry_after
from sluice_runtime.registry.mlflow import MlflowRegistry
from sluice_runtime.registry.mlflow_artifacts import onnx_file_from_mlmodel, single_onnx
from sluice_runtime.registry.options import FetchOptions
from sluice_runtime.registry.retry import TransientError
from sluice_runtime.registry.s3 import classify_client_error

NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", NOW) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", NOW) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504, 599])
def test_overload_and_server_faults_are_transient(status: int) -> None:
    response = httpx.Response(status, headers={"Retry-After": "3"})
    with pytest.raises(TransientError) as raised:
        check_status(response, "https://h/m", {})
    assert raised.value.retry_after == 3.0
    assert str(raised.value).startswith(f"https://h/m: {status}")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, "https://h/m: 401 Unauthorized: send a token"),
        (403, "https://h/m: 403 Forbidden"),
        (404, "https://h/m: 404 Not Found: no such file"),
        (410, "https://h/m: 410 Gone"),
    ],
)
def test_client_errors_fail_at_once_with_the_callers_hint(status: int, expected: str) -> None:
    hints = {401: "send a token", 404: "no such file"}
    with pytest.raises(ModelLoadError) as raised:
        check_status(httpx.Response(status), "https://h/m", hints)
    assert str(raised.value) == expected


def test_success_passes() -> None:
    check_status(httpx.Response(206), "https://h/m", {})


@pytest.mark.parametrize(
    ("code", "status", "transient", "text"),
    [
        ("SlowDown", 503, True, "SlowDown (503)"),
        ("InternalError", 500, True, "InternalError (500)"),
        ("RequestTimeout", 400, True, "RequestTimeout (400)"),
        ("SomethingNew", 502, True, "SomethingNew (502)"),
        ("NoSuchKey", 404, False, "NoSuchKey: no object with this key"),
        ("NoSuchVersion", 404, False, "NoSuchVersion: the object has no such version"),
        ("AccessDenied", 403, False, "AccessDenied: access denied; check the credentials"),
        ("InvalidArgument", 400, False, "InvalidArgument (400): Invalid version id"),
    ],
)
def test_s3_error_codes_are_retried_or_explained(
    code: str, status: int, transient: bool, text: str
) -> None:
    error = classify_client_error("s3://b/k", code, status, "Invalid version id")
    assert isinstance(error, TransientError) is transient
    assert isinstance(error, ModelLoadError) is not transient
    assert str(error).startswith(f"s3://b/k: {text}")


def test_the_onnx_flavor_names_the_model_file() -> None:
    mlmodel = "flavors:\n  onnx:\n    data: weights/model.onnx\n  python_function: {}\n"
    assert onnx_file_from_mlmodel(mlmodel) == "weights/model.onnx"
    assert onnx_file_from_mlmodel("flavors:\n  sklearn: {pickled_model: m.pkl}\n") is None
    assert onnx_file_from_mlmodel("[not: a mapping") is None
    assert onnx_file_from_mlmodel("- a list") is None


def test_without_a_flavor_the_only_onnx_file_is_the_model() -> None:
    assert single_onnx(["MLmodel", "model.onnx", "conda.yaml"], "where") == "model.onnx"
    with pytest.raises(
        ModelLoadError, match=r"where: expected exactly one \.onnx file, found none"
    ):
        single_onnx(["MLmodel"], "where")
    with pytest.raises(ModelLoadError, match=r"found a\.onnx, b\.onnx"):
        single_onnx(["b.onnx", "a.onnx"], "where")


def test_options_come_from_sluice_variables_with_fallbacks() -> None:
    options = FetchOptions.from_env(
        {
            "SSL_CERT_FILE": "/etc/ca.pem",
            "SLUICE_BEARER_TOKEN_FILE": "/var/run/token",
            "SLUICE_FETCH_TIMEOUT_SECONDS": "5",
            "SLUICE_FETCH_ATTEMPTS": "2",
            "SLUICE_FETCH_BACKOFF_SECONDS": "0.1",
            "SLUICE_S3_ADDRESSING_STYLE": "path",
        }
    )
    assert options.ca_bundle == Path("/etc/ca.pem")
    assert options.bearer_token_file == Path("/var/run/token")
    assert (options.connect_timeout, options.read_timeout) == (5.0, 5.0)
    assert (options.retry.attempts, options.retry.base_delay) == (2, 0.1)
    assert options.s3_addressing_style == "path"
    explicit = {"SLUICE_CA_BUNDLE": "/mine.pem", "SSL_CERT_FILE": "/etc/ca.pem"}
    assert FetchOptions.from_env(explicit).ca_bundle == Path("/mine.pem")
    assert FetchOptions.from_env({}) == FetchOptions()


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"SLUICE_FETCH_ATTEMPTS": "0"}, "SLUICE_FETCH_ATTEMPTS: must be at least 1, got '0'"),
        ({"SLUICE_FETCH_TIMEOUT_SECONDS": "fast"}, "SLUICE_FETCH_TIMEOUT_SECONDS: 'fast' is not"),
        ({"SLUICE_S3_ADDRESSING_STYLE": "dns"}, "SLUICE_S3_ADDRESSING_STYLE: 'dns' is not one of"),
    ],
)
def test_bad_option_values_name_the_variable(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ModelLoadError) as raised:
        FetchOptions.from_env(env)
    assert str(raised.value).startswith(problem)


def test_the_bearer_token_is_read_from_its_file_each_time(tmp_path: Path) -> None:
    token = tmp_path / "token"
    options = FetchOptions(bearer_token_file=token)
    with pytest.raises(ModelLoadError, match=f"bearer token file {token}: cannot be read"):
        options.bearer_token()
    token.write_text("first\n")
    assert options.bearer_token() == "first"
    token.write_text("rotated")
    assert options.bearer_token() == "rotated"


def test_place_links_cache_entries_and_copies_anything_else(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "sha256").mkdir(parents=True)
    cached = cache / "sha256" / "abc"
    cached.write_bytes(b"cached")
    outside = tmp_path / "user.onnx"
    outside.write_bytes(b"user")

    linked = place(cached, tmp_path / "a", cache)
    copied = place(outside, tmp_path / "b", cache)

    assert linked == tmp_path / "a" / "model.onnx"
    assert linked.stat().st_ino == cached.stat().st_ino
    assert copied.read_bytes() == b"user"
    assert copied.stat().st_ino != outside.stat().st_ino
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["model.onnx"]


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({}, "it is not set"),
        ({"MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"}, "got 'sqlite:///mlflow.db'"),
        ({"MLFLOW_TRACKING_URI": "ftp://u:pw@mlflow"}, "got 'ftp://***@mlflow'"),
    ],
)
def test_the_mlflow_registry_needs_a_rest_tracking_server(
    env: dict[str, str], problem: str
) -> None:
    with pytest.raises(ModelLoadError) as raised:
        MlflowRegistry(env)
    assert str(raised.value).endswith(problem)
