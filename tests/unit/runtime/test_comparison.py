"""Shadow-versus-primary comparison: differences, top-1 agreement and mismatch reasons."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sluice_runtime.comparison import (
    DATATYPE_MISMATCH,
    MISSING_IN_PRIMARY,
    MISSING_IN_SHADOW,
    SHAPE_MISMATCH,
    compare_outputs,
    compare_tensor,
    float_differences,
    top1_totals,
)
from sluice_runtime.tensors import Tensor


def tensor(name: str, data: Any, datatype: str = "FP32") -> Tensor:
    array = np.asarray(data, dtype=object if datatype == "BYTES" else None)
    if datatype in ("FP32", "FP16", "FP64"):
        array = array.astype({"FP16": np.float16, "FP32": np.float32, "FP64": np.float64}[datatype])
    return Tensor(name=name, datatype=datatype, shape=array.shape, data=array)


def test_identical_scores_agree_fully_with_zero_difference() -> None:
    scores = [[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]]
    result = compare_tensor(tensor("probs", scores), tensor("probs", scores))
    assert (result.abs_diff, result.rel_diff) == (0.0, 0.0)
    assert (result.top1_rows, result.top1_agreements) == (2, 2)
    assert result.top1_agreement == 1.0
    assert result.mismatch is None


def test_top1_counts_rows_whose_argmax_differs() -> None:
    primary = tensor("probs", [[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.0, 0.1, 0.9]])
    shadow = tensor("probs", [[0.1, 0.7, 0.2], [0.3, 0.5, 0.2], [0.0, 0.1, 0.9]])
    result = compare_tensor(primary, shadow)
    assert (result.top1_rows, result.top1_agreements) == (3, 2)
    assert result.abs_diff == pytest.approx(0.2)
    # Relative to the largest primary magnitude (0.9), not element by element.
    assert result.rel_diff == pytest.approx(0.2 / 0.9)


def test_top1_works_over_leading_dimensions() -> None:
    primary = np.zeros((2, 3, 4), dtype=np.float32)
    primary[..., 1] = 1.0
    shadow = primary.copy()
    shadow[1, 2] = [0.0, 0.0, 0.0, 2.0]
    result = compare_tensor(tensor("t", primary), tensor("t", shadow))
    assert (result.top1_rows, result.top1_agreements) == (6, 5)


@pytest.mark.parametrize(
    "data",
    [[0.5, 0.2], [[0.5], [0.2]], 3.0],
    ids=["rank1", "one-class", "scalar"],
)
def test_outputs_not_shaped_like_scores_have_no_top1(data: Any) -> None:
    result = compare_tensor(tensor("y", data), tensor("y", data))
    assert result.top1_rows == 0
    assert result.top1_agreement is None
    assert result.abs_diff == 0.0


def test_labels_compare_element_by_element() -> None:
    result = compare_tensor(
        tensor("label", [1, 2, 3, 4], "INT64"), tensor("label", [1, 2, 0, 4], "INT64")
    )
    assert (result.top1_rows, result.top1_agreements) == (4, 3)
    assert result.abs_diff is None


def test_bytes_labels_compare() -> None:
    result = compare_tensor(
        tensor("label", [b"cat", b"dog"], "BYTES"), tensor("label", [b"cat", b"cow"], "BYTES")
    )
    assert (result.top1_rows, result.top1_agreements) == (2, 1)


def test_precision_change_still_compares_numerically() -> None:
    values = [[1.0, 2.0], [3.0, 4.0]]
    result = compare_tensor(tensor("y", values, "FP32"), tensor("y", values, "FP16"))
    assert result.mismatch is None
    assert result.abs_diff == 0.0


def test_float_against_label_is_a_datatype_mismatch() -> None:
    result = compare_tensor(tensor("y", [1.0, 2.0]), tensor("y", [1, 2], "INT64"))
    assert result.mismatch == DATATYPE_MISMATCH
    assert result.abs_diff is None


def test_shape_mismatch_is_reported() -> None:
    result = compare_tensor(tensor("y", [[1.0, 2.0]]), tensor("y", [[1.0], [2.0]]))
    assert result.mismatch == SHAPE_MISMATCH


def test_missing_outputs_are_reported_on_both_sides() -> None:
    results = compare_outputs(
        [tensor("a", [1.0]), tensor("b", [2.0])], [tensor("a", [1.0]), tensor("c", [3.0])]
    )
    assert [(item.name, item.mismatch) for item in results] == [
        ("a", None),
        ("b", MISSING_IN_SHADOW),
        ("c", MISSING_IN_PRIMARY),
    ]


def test_relative_difference_of_zero_primary_is_infinite() -> None:
    assert float_differences(np.zeros(3), np.array([0.0, 1e-3, 0.0])) == (1e-3, float("inf"))


def test_nan_on_one_side_is_infinitely_apart_and_on_both_agrees() -> None:
    assert float_differences(np.array([np.nan, 1.0]), np.array([np.nan, 1.0])) == (0.0, 0.0)
    abs_diff, rel_diff = float_differences(np.array([1.0, 1.0]), np.array([np.nan, 1.0]))
    assert abs_diff == float("inf")
    assert rel_diff == float("inf")


def test_equal_infinities_agree_and_opposite_ones_do_not() -> None:
    assert float_differences(np.array([np.inf, 2.0]), np.array([np.inf, 2.0])) == (0.0, 0.0)
    assert float_differences(np.array([np.inf]), np.array([-np.inf]))[0] == float("inf")


def test_empty_outputs_compare_equal() -> None:
    assert float_differences(np.zeros((0, 3)), np.zeros((0, 3))) == (0.0, 0.0)


def test_top1_totals_sum_over_outputs() -> None:
    results = compare_outputs(
        [tensor("probs", [[0.9, 0.1], [0.2, 0.8]]), tensor("label", [0, 1], "INT64")],
        [tensor("probs", [[0.1, 0.9], [0.2, 0.8]]), tensor("label", [1, 1], "INT64")],
    )
    assert top1_totals(results) == (4, 2)
