"""Settings come from flags over SLUICE_* variables over defaults, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from sluice_runtime.cli import build_parser
from sluice_runtime.settings import RuntimeSettings, SettingsError, resolve_settings

DIGEST = "sha256:" + "ab" * 32
REQUIRED = {"model_name": "iris", "model_version": "3", "model_uri": "file:///models/iris"}


def test_defaults_match_the_contract() -> None:
    settings = resolve_settings(REQUIRED, {})
    assert settings.host == "0.0.0.0"
    assert (settings.http_port, settings.grpc_port) == (8080, 8081)
    assert settings.max_batch_size == 0
    assert settings.max_batch_delay_us == 2000
    assert settings.max_queue_size == 1024
    assert settings.warmup_requests == 1
    assert settings.device == "auto"
    assert settings.intra_op_threads == 0
    assert settings.cache_dir == Path("~/.cache/sluice/models").expanduser()
    assert settings.max_request_bytes == 67108864
    assert settings.drain_seconds == 25.0
    assert settings.digest is None


def test_every_field_reads_its_environment_variable() -> None:
    env = {
        "SLUICE_MODEL_NAME": "fraud",
        "SLUICE_MODEL_VERSION": "7",
        "SLUICE_MODEL_URI": "file:///var/lib/sluice/model/model.onnx",
        "SLUICE_DIGEST": DIGEST.upper().replace("SHA256", "sha256"),
        "SLUICE_HOST": "127.0.0.1",
        "SLUICE_HTTP_PORT": "9000",
        "SLUICE_GRPC_PORT": "9001",
        "SLUICE_MAX_BATCH_SIZE": "32",
        "SLUICE_MAX_BATCH_DELAY_US": "500",
        "SLUICE_MAX_QUEUE_SIZE": "10",
        "SLUICE_WARMUP_REQUESTS": "4",
        "SLUICE_DEVICE": "cpu",
        "SLUICE_INTRA_OP_THREADS": "2",
        "SLUICE_CACHE_DIR": "/cache",
        "SLUICE_MAX_REQUEST_BYTES": "1024",
        "SLUICE_DRAIN_SECONDS": "2.5",
        "SLUICE_SHADOW_URL": "http://shadow:8080",
        "SLUICE_SHADOW_PERCENT": "50",
    }
    settings = resolve_settings({}, env)
    assert settings == RuntimeSettings(
        model_name="fraud",
        model_version="7",
        model_uri="file:///var/lib/sluice/model/model.onnx",
        digest=DIGEST,
        host="127.0.0.1",
        http_port=9000,
        grpc_port=9001,
        max_batch_size=32,
        max_batch_delay_us=500,
        max_queue_size=10,
        warmup_requests=4,
        device="cpu",
        intra_op_threads=2,
        cache_dir=Path("/cache"),
        max_request_bytes=1024,
        drain_seconds=2.5,
        shadow_url="http://shadow:8080",
        shadow_percent=50.0,
    )
    assert settings.max_batch_delay_seconds == pytest.approx(0.0005)


def test_a_flag_wins_over_its_variable_and_empty_variables_are_unset() -> None:
    env = {"SLUICE_MAX_BATCH_SIZE": "32", "SLUICE_DIGEST": "", **_env(REQUIRED)}
    settings = resolve_settings({"max_batch_size": "8", "digest": None}, env)
    assert settings.max_batch_size == 8
    assert settings.digest is None


def test_the_parser_leaves_unset_flags_as_none_so_env_applies() -> None:
    args = build_parser().parse_args(["serve", "--model-name", "m", "--max-batch-size", "4"])
    settings = resolve_settings(vars(args), {"SLUICE_MODEL_VERSION": "1", "SLUICE_MODEL_URI": "x"})
    assert (settings.model_name, settings.model_version, settings.max_batch_size) == ("m", "1", 4)
    assert settings.http_port == 8080


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        ({"max_batch_size": "-1"}, "--max-batch-size / SLUICE_MAX_BATCH_SIZE"),
        ({"http_port": "http"}, "--http-port / SLUICE_HTTP_PORT"),
        ({"device": "tpu"}, "--device / SLUICE_DEVICE"),
        ({"digest": "md5:abc"}, "sha256:<64 hex digits>"),
        ({"max_queue_size": "0"}, "--max-queue-size / SLUICE_MAX_QUEUE_SIZE"),
    ],
)
def test_bad_values_name_the_flag_and_variable(flags: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError, match="invalid runtime settings") as caught:
        resolve_settings({**REQUIRED, **flags}, {})
    assert needle in str(caught.value)


def test_missing_required_settings_are_all_named() -> None:
    with pytest.raises(SettingsError) as caught:
        resolve_settings({}, {})
    message = str(caught.value)
    for name in ("--model-name / SLUICE_MODEL_NAME", "--model-version", "--model-uri"):
        assert name in message


def _env(values: dict[str, str]) -> dict[str, str]:
    return {"SLUICE_" + key.upper(): value for key, value in values.items()}
