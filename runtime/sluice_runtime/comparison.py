"""How a shadow's answer compares with production's, output by output.

A shadow is only worth running if someone can tell whether it would have answered the
same way. The shadow runtime receives production's outputs beside the request, runs its
own model, and hands both to `compare_outputs`; the figures go into its metrics. This
module is pure (numpy only) so the arithmetic is unit-tested without a server.

Two kinds of figure, chosen by the output's datatype:

- Float outputs (FP16/FP32/FP64) get an absolute difference, max |shadow - primary| over
  the elements, and a relative one, that maximum divided by the largest |primary| element
  (the norm-wise relative error in the max norm: robust to elements near zero, where an
  element-wise ratio would explode). Float outputs shaped like classifier scores (rank >= 2,
  last dimension >= 2) also get top-1 agreement: argmax over the last axis, row by row.
- Every other datatype (integers, BOOL, BYTES) is a label: each element agrees or not, which
  is top-1 agreement for a classifier whose output is its predicted class.

An output that cannot be compared (missing on one side, different shapes, float against
label) is reported with the reason instead of figures, never silently skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sluice_runtime.tensors import Tensor

_FLOAT_DATATYPES = frozenset({"FP16", "FP32", "FP64"})
# Below this the primary's output is treated as all zeros for the relative difference.
_TINY = float(np.finfo(np.float64).tiny)

MISSING_IN_SHADOW = "missing_in_shadow"
MISSING_IN_PRIMARY = "missing_in_primary"
SHAPE_MISMATCH = "shape_mismatch"
DATATYPE_MISMATCH = "datatype_mismatch"


@dataclass(frozen=True, slots=True)
class OutputComparison:
    """The comparison of one named output; `mismatch` set means no figures were computed."""

    name: str
    abs_diff: float | None = None
    rel_diff: float | None = None
    top1_rows: int = 0
    top1_agreements: int = 0
    mismatch: str | None = None

    @property
    def top1_agreement(self) -> float | None:
        """Share of rows whose top-1 matched, or None when the output has no top-1."""
        if self.top1_rows == 0:
            return None
        return self.top1_agreements / self.top1_rows


def compare_outputs(primary: Sequence[Tensor], shadow: Sequence[Tensor]) -> list[OutputComparison]:
    """Compare every output the primary returned (and any the shadow alone returned)."""
    shadow_by_name = {tensor.name: tensor for tensor in shadow}
    primary_names = {tensor.name for tensor in primary}
    results = []
    for reference in primary:
        candidate = shadow_by_name.get(reference.name)
        if candidate is None:
            results.append(OutputComparison(reference.name, mismatch=MISSING_IN_SHADOW))
        else:
            results.append(compare_tensor(reference, candidate))
    results.extend(
        OutputComparison(tensor.name, mismatch=MISSING_IN_PRIMARY)
        for tensor in shadow
        if tensor.name not in primary_names
    )
    return results


def compare_tensor(primary: Tensor, shadow: Tensor) -> OutputComparison:
    """Compare two tensors of the same name: differences for floats, agreement for labels."""
    name = primary.name
    primary_float = primary.datatype in _FLOAT_DATATYPES
    if primary_float != (shadow.datatype in _FLOAT_DATATYPES):
        return OutputComparison(name, mismatch=DATATYPE_MISMATCH)
    reference = np.asarray(primary.data)
    candidate = np.asarray(shadow.data)
    if reference.shape != candidate.shape:
        return OutputComparison(name, mismatch=SHAPE_MISMATCH)
    if not primary_float:
        rows, agreements = label_agreement(reference, candidate)
        return OutputComparison(name, top1_rows=rows, top1_agreements=agreements)
    abs_diff, rel_diff = float_differences(reference, candidate)
    rows, agreements = top1_agreement(reference, candidate)
    return OutputComparison(
        name, abs_diff=abs_diff, rel_diff=rel_diff, top1_rows=rows, top1_agreements=agreements
    )


def float_differences(
    primary: np.ndarray[Any, Any], shadow: np.ndarray[Any, Any]
) -> tuple[float, float]:
    """(max absolute difference, that maximum relative to the largest |primary| element).

    NaN on one side only is an infinite difference; NaN on both sides agrees.
    """
    if primary.size == 0:
        return 0.0, 0.0
    reference = np.atleast_1d(primary).astype(np.float64, copy=False)
    candidate = np.atleast_1d(shadow).astype(np.float64, copy=False)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(candidate - reference)
    reference_nan = np.isnan(reference)
    candidate_nan = np.isnan(candidate)
    diff[reference_nan & candidate_nan] = 0.0
    diff[reference_nan ^ candidate_nan] = np.inf
    # inf - inf is NaN: equal infinities agree, anything else left NaN is infinitely apart.
    diff[np.isinf(reference) & (reference == candidate)] = 0.0
    diff[np.isnan(diff)] = np.inf
    abs_diff = float(diff.max())
    finite = np.abs(reference[np.isfinite(reference)])
    scale = float(finite.max()) if finite.size else 0.0
    if abs_diff == 0.0:
        return 0.0, 0.0
    if scale < _TINY:
        return abs_diff, float("inf")
    return abs_diff, abs_diff / scale


def top1_agreement(primary: np.ndarray[Any, Any], shadow: np.ndarray[Any, Any]) -> tuple[int, int]:
    """(rows, rows whose argmax over the last axis matches) for classifier-shaped scores.

    Only rank >= 2 with at least two classes is classifier-shaped; anything else has no
    top-1 and returns (0, 0).
    """
    if primary.ndim < 2 or primary.shape[-1] < 2 or primary.size == 0:
        return 0, 0
    primary_top = np.argmax(primary, axis=-1)
    shadow_top = np.argmax(shadow, axis=-1)
    return int(primary_top.size), int(np.count_nonzero(primary_top == shadow_top))


def label_agreement(primary: np.ndarray[Any, Any], shadow: np.ndarray[Any, Any]) -> tuple[int, int]:
    """(elements, equal elements) for label outputs: predicted classes, flags, strings."""
    return int(primary.size), int(np.count_nonzero(primary == shadow))


def top1_totals(comparisons: Sequence[OutputComparison]) -> tuple[int, int]:
    """(rows, agreements) summed over every output that has a top-1."""
    return (
        sum(item.top1_rows for item in comparisons),
        sum(item.top1_agreements for item in comparisons),
    )
