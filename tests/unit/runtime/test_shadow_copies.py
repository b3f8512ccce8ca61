"""Shadow copies: sampling, the wire codec, and the shadow side's comparison metrics."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from sluice_runtime.errors import InvalidInput
from sluice_runtime.rest.shadow_codec import decode_shadow_copy, encode_shadow_copy
from sluice_runtime.settings import SettingsError, resolve_settings
from sluice_runtime.shadow import (
    Sampler,
    ShadowCopy,
    ShadowMetrics,
    compare_copy,
    summary,
)
from sluice_runtime.tensors import InferRequest, InferResponse, Tensor


def tensor(name: str, data: Any, datatype: str) -> Tensor:
    array = np.asarray(data, dtype=object) if datatype == "BYTES" else np.asarray(data)
    return Tensor(name=name, datatype=datatype, shape=array.shape, data=array)


def sample_copy() -> ShadowCopy:
    request = InferRequest(
        id="req-1",
        inputs=[
            tensor("input", np.arange(6, dtype=np.float32).reshape(2, 3), "FP32"),
            tensor("text", [b"a", b"bc"], "BYTES"),
        ],
        parameters={"priority": 2},
    )
    return ShadowCopy(
        request=request,
        primary_outputs=[
            tensor("probs", np.array([[0.25, 0.75], [0.875, 0.125]], dtype=np.float32), "FP32"),
            tensor("label", np.array([1, 0], dtype=np.int64), "INT64"),
        ],
        primary_model="fraud",
        primary_version="7",
        primary_latency_seconds=0.004,
    )


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    sample = registry.get_sample_value(name, labels)
    return 0.0 if sample is None else sample


# -- sampling ----------------------------------------------------------------------------


@pytest.mark.parametrize(("percent", "expected"), [(0, 0), (100, 5000)])
def test_zero_and_hundred_percent_are_exact(percent: float, expected: int) -> None:
    sampler = Sampler(percent, random.Random(1))
    assert sum(sampler.take() for _ in range(5000)) == expected


def test_sampled_share_matches_percent() -> None:
    sampler = Sampler(10, random.Random(7))
    taken = sum(sampler.take() for _ in range(20000))
    # 99.9% binomial interval for n=20000, p=0.1: 2000 +- 3.29 * sqrt(1800).
    assert 1860 <= taken <= 2140


@pytest.mark.parametrize("percent", [-1, 100.5])
def test_percent_out_of_range_is_refused(percent: float) -> None:
    with pytest.raises(ValueError, match="shadow percent"):
        Sampler(percent)


# -- wire codec --------------------------------------------------------------------------


def test_copy_round_trips_through_the_wire() -> None:
    copy = sample_copy()
    encoded = encode_shadow_copy(copy)
    assert encoded.path == "/v2/models/fraud/shadow"
    assert encoded.headers["x-request-id"] == "req-1"
    decoded = decode_shadow_copy(
        encoded.content, encoded.headers["inference-header-content-length"], "fallback"
    )
    assert decoded.request.id == "req-1"
    assert decoded.request.parameters == {"priority": 2}
    assert [o.name for o in decoded.request.outputs or []] == ["probs", "label"]
    for sent, got in zip(
        [*copy.request.inputs, *copy.primary_outputs],
        [*decoded.request.inputs, *decoded.primary_outputs],
        strict=True,
    ):
        assert (got.name, got.datatype, got.shape) == (sent.name, sent.datatype, sent.shape)
        assert np.array_equal(got.data, sent.data)
    assert (decoded.primary_model, decoded.primary_version) == ("fraud", "7")
    assert decoded.primary_latency_seconds == pytest.approx(0.004)


def test_path_quotes_the_model_name() -> None:
    copy = sample_copy()
    copy.primary_model = "a/b c"
    assert encode_shadow_copy(copy).path == "/v2/models/a%2Fb%20c/shadow"


def _body(doc: bytes, binary: bytes = b"") -> tuple[bytes, str]:
    return doc + binary, str(len(doc))


@pytest.mark.parametrize(
    ("doc", "binary", "message"),
    [
        (b'{"inputs": [], "primary_outputs": []}', b"", "'primary' must be an object"),
        (b'{"inputs": [], "primary": {}}', b"", "'primary_outputs' must be a list"),
        (
            b'{"inputs": [], "primary_outputs": [], "primary": {"model_name": "m",'
            b' "model_version": "1", "latency_seconds": -1}}',
            b"",
            "primary.latency_seconds must be a number >= 0",
        ),
        (
            b'{"inputs": [], "primary_outputs": [], "primary": {"model_name": "m",'
            b' "latency_seconds": 1}}',
            b"",
            "primary.model_version must be a non-empty string",
        ),
        (
            b'{"inputs": [], "primary_outputs": [], "primary": {"model_name": "m",'
            b' "model_version": "1", "latency_seconds": 0}}',
            b"xx",
            "2 bytes after",
        ),
    ],
)
def test_bad_copies_are_refused_naming_the_field(doc: bytes, binary: bytes, message: str) -> None:
    body, length = _body(doc, binary)
    with pytest.raises(InvalidInput, match=message):
        decode_shadow_copy(body, length, "id")


def test_json_tensors_are_accepted() -> None:
    doc = (
        b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]}],'
        b' "primary_outputs": [{"name": "y", "datatype": "INT64", "shape": [1], "data": [3]}],'
        b' "primary": {"model_name": "m", "model_version": "1", "latency_seconds": 0.5}}'
    )
    copy = decode_shadow_copy(doc, None, "generated")
    assert copy.request.id == "generated"
    assert copy.primary_outputs[0].data.tolist() == [3]


# -- the shadow side -----------------------------------------------------------------------


def answering(outputs: list[Tensor]) -> Any:
    """An infer callable that answers with `outputs` and remembers what it was asked."""
    asked: list[InferRequest] = []

    async def infer(request: InferRequest) -> InferResponse:
        asked.append(request)
        return InferResponse("fraud", "9", request.id, outputs)

    infer.asked = asked  # type: ignore[attr-defined]
    return infer


def test_compare_copy_runs_the_primary_outputs_and_records_agreement() -> None:
    registry = CollectorRegistry()
    metrics = ShadowMetrics(registry, "fraud", "9")
    copy = sample_copy()
    infer = answering(
        [
            tensor("probs", np.array([[0.375, 0.625], [0.375, 0.625]], dtype=np.float32), "FP32"),
            tensor("label", np.array([1, 1], dtype=np.int64), "INT64"),
        ]
    )
    comparisons = asyncio.run(compare_copy(infer, metrics, copy))
    assert [o.name for o in infer.asked[0].outputs] == ["probs", "label"]
    labels = {"model": "fraud", "version": "9", "primary_version": "7"}
    assert value(registry, "sluice_shadow_requests_total", **labels, result="compared") == 1
    for output in ("probs", "label"):
        assert value(registry, "sluice_shadow_top1_rows_total", **labels, output=output) == 2
        assert value(registry, "sluice_shadow_top1_agreements_total", **labels, output=output) == 1
    # |0.375 - 0.875| = 0.5 is the largest difference; it lands in the le=0.5 bucket, not le=0.25.
    bucket = "sluice_shadow_abs_diff_bucket"
    assert value(registry, bucket, **labels, output="probs", le="0.5") == 1
    assert value(registry, bucket, **labels, output="probs", le="0.25") == 0
    assert value(registry, "sluice_shadow_abs_diff_count", **labels, output="label") == 0
    for side in ("primary", "shadow"):
        assert value(registry, "sluice_shadow_latency_seconds_count", **labels, side=side) == 1
    assert value(registry, "sluice_shadow_latency_seconds_sum", **labels, side="primary") == (
        pytest.approx(0.004)
    )
    assert summary(comparisons)["top1_agreements"] == 2


def test_mismatched_outputs_are_counted_by_reason() -> None:
    registry = CollectorRegistry()
    metrics = ShadowMetrics(registry, "fraud", "9")
    infer = answering(
        [tensor("probs", np.zeros((2, 3), dtype=np.float32), "FP32")]  # no label, other shape
    )
    asyncio.run(compare_copy(infer, metrics, sample_copy()))
    labels = {"model": "fraud", "version": "9", "primary_version": "7"}
    mismatches = "sluice_shadow_output_mismatches_total"
    assert value(registry, mismatches, **labels, output="probs", reason="shape_mismatch") == 1
    assert value(registry, mismatches, **labels, output="label", reason="missing_in_shadow") == 1
    assert value(registry, "sluice_shadow_top1_rows_total", **labels, output="probs") == 0


def test_a_shadow_url_that_is_not_http_is_refused_naming_the_flag() -> None:
    env = {"SLUICE_MODEL_NAME": "m", "SLUICE_MODEL_VERSION": "1", "SLUICE_MODEL_URI": "file:///m"}
    with pytest.raises(SettingsError, match=r"--shadow-url / SLUICE_SHADOW_URL: .*http://"):
        resolve_settings({"shadow_url": "shadow:8080"}, env)
    settings = resolve_settings({}, {**env, "SLUICE_SHADOW_URL": "http://shadow:8080"})
    assert settings.shadow_url == "http://shadow:8080"


def test_a_copy_the_shadow_cannot_run_is_counted_by_status_and_raised() -> None:
    registry = CollectorRegistry()
    metrics = ShadowMetrics(registry, "fraud", "9")

    async def refuse(request: InferRequest) -> InferResponse:
        raise InvalidInput("input 'input': expected FP32, got INT64")

    with pytest.raises(InvalidInput):
        asyncio.run(compare_copy(refuse, metrics, sample_copy()))
    labels = {"model": "fraud", "version": "9", "primary_version": "7"}
    assert value(registry, "sluice_shadow_requests_total", **labels, result="400") == 1
    assert value(registry, "sluice_shadow_requests_total", **labels, result="compared") == 0
