"""URI parsing and the pinning rules: what each scheme accepts as a version that cannot move."""

from __future__ import annotations

import pytest
from sluice_runtime.errors import ModelLoadError
from sluice_runtime.registry.uris import (
    MlflowModelRef,
    S3Location,
    parse_mlflow,
    parse_s3,
    redact,
    require_http_digest,
    require_mlflow_pin,
    require_s3_pin,
)

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://models/fraud/model.onnx", S3Location("models", "fraud/model.onnx", None)),
        ("s3://models/a%20b.onnx?versionId=3HL4kq", S3Location("models", "a b.onnx", "3HL4kq")),
    ],
)
def test_s3_uris_split_into_bucket_key_and_version(uri: str, expected: S3Location) -> None:
    assert parse_s3(uri) == expected


def test_s3_locations_render_back_to_canonical_uris() -> None:
    assert S3Location("m", "a b.onnx", "v/1").uri() == "s3://m/a%20b.onnx?versionId=v%2F1"
    assert S3Location("m", "k", None).uri() == "s3://m/k"


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("s3://bucket", "expected s3://<bucket>/<key>"),
        ("s3:///key", "expected s3://<bucket>/<key>"),
        ("s3://b/k?versionId=", "versionId is empty"),
        ("s3://b/k?partNumber=2", "unsupported query parameter(s) partNumber"),
    ],
)
def test_malformed_s3_uris_say_what_is_wrong(uri: str, problem: str) -> None:
    with pytest.raises(ModelLoadError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_s3(uri)


def test_a_bare_s3_key_needs_a_version_or_a_digest() -> None:
    bare = parse_s3("s3://b/k")
    with pytest.raises(ModelLoadError, match=r"not pinned: add \?versionId="):
        require_s3_pin(bare, "s3://b/k", None)
    require_s3_pin(bare, "s3://b/k", DIGEST)
    require_s3_pin(parse_s3("s3://b/k?versionId=1"), "s3://b/k?versionId=1", None)


def test_an_http_url_needs_a_digest() -> None:
    with pytest.raises(ModelLoadError, match=r"http\(s\) models need a digest"):
        require_http_digest("https://h/m.onnx", None)
    require_http_digest("https://h/m.onnx", DIGEST)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("mlflow://fraud/7", MlflowModelRef("fraud", version="7")),
        ("models:/fraud/7", MlflowModelRef("fraud", version="7")),
        ("mlflow://fraud@champion", MlflowModelRef("fraud", alias="champion")),
        ("models:/fraud@champion", MlflowModelRef("fraud", alias="champion")),
        ("models:/fraud/Production", MlflowModelRef("fraud", moving="Production")),
        ("mlflow://fraud/latest", MlflowModelRef("fraud", moving="latest")),
        ("mlflow://team.fraud%20model/12", MlflowModelRef("team.fraud model", version="12")),
    ],
)
def test_mlflow_uris_name_a_version_an_alias_or_a_moving_version(
    uri: str, expected: MlflowModelRef
) -> None:
    assert parse_mlflow(uri) == expected


@pytest.mark.parametrize(
    "uri", ["mlflow://fraud", "mlflow://fraud/1/2", "mlflow://fraud/07", "mlflow://fraud/v1"]
)
def test_mlflow_uris_without_a_usable_version_are_refused(uri: str) -> None:
    with pytest.raises(ModelLoadError, match=f"model uri '{uri}'"):
        parse_mlflow(uri)


def test_only_a_version_number_pins_an_mlflow_model() -> None:
    require_mlflow_pin(parse_mlflow("mlflow://fraud/3"), "mlflow://fraud/3")
    for uri, what in (
        ("mlflow://f@champion", "alias 'champion'"),
        ("models:/f/Staging", "'Staging'"),
    ):
        with pytest.raises(ModelLoadError) as raised:
            require_mlflow_pin(parse_mlflow(uri), uri)
        assert f"is not pinned: {what} can move" in str(raised.value)
        assert f"sluice-runtime resolve {uri}" in str(raised.value)


def test_mlflow_refs_render_their_canonical_uri() -> None:
    assert MlflowModelRef("a b", version="2").uri() == "mlflow://a%20b/2"
    assert MlflowModelRef("a", alias="x").uri() == "mlflow://a@x"


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("https://user:pw@h/m.onnx", "https://***@h/m.onnx"),
        (
            "https://h/m.onnx?X-Amz-Signature=abc&X-Amz-Credential=AKIA&versionId=7",
            "https://h/m.onnx?X-Amz-Signature=***&X-Amz-Credential=***&versionId=7",
        ),
        ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
        ("s3://b/k?versionId=v", "s3://b/k?versionId=v"),
    ],
)
def test_redact_masks_credentials_in_uris(uri: str, shown: str) -> None:
    assert redact(uri) == shown
