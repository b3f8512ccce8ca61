"""mlflow:// models against a real `mlflow server` (SQLite store, proxied local artifacts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from prometheus_client import CollectorRegistry
from sluice_runtime.errors import ModelLoadError
from sluice_runtime.registry import fetch_model
from sluice_runtime.registry.metrics import RegistryMetrics
from sluice_runtime.registry.options import FetchOptions
from sluice_runtime.registry.retry import RetryPolicy

from tests.models import mlp
from tests.runtime.harness import StartRuntime
from tests.runtime.registry_servers import (
    Mlflow,
    minio_server,
    mlflow_server,
    register_versions,
    use_only,
)

SLUICE_RUNTIME = str(Path(sys.executable).with_name("sluice-runtime"))
OPTIONS = FetchOptions(read_timeout=20.0, retry=RetryPolicy(attempts=3, base_delay=0.01))
X = np.linspace(-1.0, 1.0, 8, dtype=np.float32).reshape(2, 4)


def answers(model: Path) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"input": X})[0])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mlflow, list[Path]]]:
    """Model `fraud`: version 1 and version 2 (different weights), alias `champion` -> 2."""
    folder = tmp_path_factory.mktemp("mlflow")
    models = [mlp(folder / f"v{v}.onnx", inputs=4, hidden=8, outputs=3, seed=v) for v in (1, 2)]
    with mlflow_server(folder) as server:
        register_versions(server, "fraud", models, alias="champion")
        yield server, models


@pytest.fixture
def tracking(registry: tuple[Mlflow, list[Path]], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry[0].tracking_uri)
    return registry[0].tracking_uri


def cli(*argv: str, tracking_uri: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLUICE_", "MLFLOW_"))}
    env.update(MLFLOW_TRACKING_URI=tracking_uri, SLUICE_CACHE_DIR=str(cache))
    return subprocess.run(
        [SLUICE_RUNTIME, *argv], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_each_version_is_fetched_with_its_own_weights(
    tmp_path: Path, registry: tuple[Mlflow, list[Path]], tracking: str
) -> None:
    _, models = registry
    first = fetch_model("mlflow://fraud/1", None, tmp_path / "cache", options=OPTIONS)
    second = fetch_model("models:/fraud/2", None, tmp_path / "cache", options=OPTIONS)

    np.testing.assert_allclose(answers(first.path), answers(models[0]), rtol=1e-6)
    np.testing.assert_allclose(answers(second.path), answers(models[1]), rtol=1e-6)
    assert not np.allclose(answers(first.path), answers(second.path))
    assert (first.uri, second.uri) == ("mlflow://fraud/1", "mlflow://fraud/2")


def test_a_fetched_version_is_found_in_the_cache_without_its_digest(
    tmp_path: Path, tracking: str
) -> None:
    registry = CollectorRegistry()
    metrics = RegistryMetrics(registry)
    first = fetch_model("mlflow://fraud/2", None, tmp_path / "cache", metrics, OPTIONS)
    again = fetch_model("mlflow://fraud/2", first.digest, tmp_path / "cache", metrics, OPTIONS)
    third = fetch_model("mlflow://fraud/2", None, tmp_path / "cache", metrics, OPTIONS)

    assert first.path == again.path == third.path
    assert registry.get_sample_value("sluice_model_cache_hits_total", {"scheme": "mlflow"}) == 2


def test_resolve_turns_an_alias_into_the_version_number_and_its_digest(
    tmp_path: Path, tracking: str
) -> None:
    pinned = fetch_model("mlflow://fraud/2", None, tmp_path / "pinned", options=OPTIONS)

    for alias in ("mlflow://fraud@champion", "models:/fraud@champion"):
        result = cli("resolve", alias, "--output", "json", tracking_uri=tracking, cache=tmp_path)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"uri": "mlflow://fraud/2", "digest": pinned.digest}

    latest = cli("resolve", "models:/fraud/latest", tracking_uri=tracking, cache=tmp_path)
    assert latest.stdout == f"uri: mlflow://fraud/2\ndigest: {pinned.digest}\n"


def test_fetch_refuses_aliases_and_stages_as_unpinned(tmp_path: Path, tracking: str) -> None:
    for uri in ("mlflow://fraud@champion", "models:/fraud/Production", "models:/fraud/latest"):
        result = cli(
            "fetch",
            "--model-uri",
            uri,
            "--dest",
            str(tmp_path),
            tracking_uri=tracking,
            cache=tmp_path,
        )
        assert result.returncode == 1
        assert f"model uri {uri!r} is not pinned" in result.stderr
        assert f"sluice-runtime resolve {uri}" in result.stderr
    assert not (tmp_path / "model.onnx").exists()


def test_missing_models_and_versions_are_named(tmp_path: Path, tracking: str) -> None:
    for uri, missing in (
        ("mlflow://fraud/9", "Model Version (name=fraud, version=9) not found"),
        ("mlflow://nope/1", "not found"),
    ):
        with pytest.raises(ModelLoadError) as raised:
            fetch_model(uri, None, tmp_path / "cache", options=OPTIONS)
        message = str(raised.value)
        assert message.startswith(f"{uri}: not found in the MLflow registry at {tracking}: ")
        assert missing in message


def test_versions_stored_in_an_s3_artifact_root_are_read_from_the_bucket(
    tmp_path: Path,
    registry: tuple[Mlflow, list[Path]],
    tracking: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, models = registry
    with minio_server(tmp_path / "minio") as minio:
        minio.client().create_bucket(Bucket="mlflow")
        aws = minio.env(tmp_path)
        register_versions(
            server,
            "fraud-s3",
            models[1:],
            artifact_location="s3://mlflow/fraud-s3",
            env={**aws, "MLFLOW_S3_ENDPOINT_URL": minio.endpoint},
        )
        use_only(aws, monkeypatch)
        fetched = fetch_model("mlflow://fraud-s3/1", None, tmp_path / "cache", options=OPTIONS)

    location = httpx.get(
        f"{tracking}/api/2.0/mlflow/model-versions/get-download-uri",
        params={"name": "fraud-s3", "version": "1"},
    ).json()["artifact_uri"]
    assert location.startswith("s3://mlflow/fraud-s3/")
    np.testing.assert_allclose(answers(fetched.path), answers(models[1]), rtol=1e-6)


def test_serving_version_2_answers_with_version_2(
    registry: tuple[Mlflow, list[Path]], start_runtime: StartRuntime
) -> None:
    server, models = registry
    runtime = start_runtime(
        "mlflow://fraud/2",
        env={"MLFLOW_TRACKING_URI": server.tracking_uri},
        model_name="fraud",
        model_version="2",
    )
    request = {
        "inputs": [
            {"name": "input", "shape": [2, 4], "datatype": "FP32", "data": X.ravel().tolist()}
        ]
    }
    answer = httpx.post(f"{runtime.http_url}/v2/models/fraud/infer", json=request, timeout=30)

    assert answer.status_code == 200, answer.text
    served = np.asarray(answer.json()["outputs"][0]["data"], dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(served, answers(models[1]), rtol=1e-5)
    assert not np.allclose(served, answers(models[0]))
