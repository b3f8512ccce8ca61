"""Batching arithmetic with an explicit clock: deadlines, fill, keys, bounds, merge, split."""

from __future__ import annotations

import numpy as np
import pytest
from sluice_runtime.batching import BatchPolicy, BatchQueue, merge, merge_key, split

KEY = ("input", (4,))


def queue(
    max_batch_size: int = 8, max_delay: float = 0.002, max_queue: int = 100
) -> BatchQueue[str]:
    return BatchQueue(BatchPolicy(max_batch_size, max_delay, max_queue))


def names(batch: list) -> list[str]:  # type: ignore[type-arg]
    return [pending.item for pending in batch]


def test_an_empty_queue_has_nothing_due() -> None:
    assert queue().due_in(now=5.0) is None
    assert queue().take() == []


def test_a_lone_request_waits_exactly_until_its_deadline() -> None:
    q = queue(max_delay=0.002)
    q.offer("a", 1, KEY, now=10.0)
    assert q.due_in(now=10.0) == pytest.approx(0.002)
    assert q.due_in(now=10.0015) == pytest.approx(0.0005)
    assert q.due_in(now=10.002) == 0.0
    assert q.due_in(now=11.0) == 0.0  # overdue is due, never negative


def test_the_deadline_follows_the_oldest_request_not_the_newest() -> None:
    q = queue(max_delay=0.010)
    q.offer("a", 1, KEY, now=1.000)
    q.offer("b", 1, KEY, now=1.008)
    assert q.due_in(now=1.008) == pytest.approx(0.002)


def test_a_full_batch_is_due_before_the_deadline() -> None:
    q = queue(max_batch_size=4, max_delay=1.0)
    for name in "abc":
        q.offer(name, 1, KEY, now=0.0)
    assert q.due_in(now=0.0) == pytest.approx(1.0)
    q.offer("d", 1, KEY, now=0.0)
    assert q.due_in(now=0.0) == 0.0
    assert names(q.take()) == ["a", "b", "c", "d"]
    assert len(q) == 0


def test_rows_not_requests_count_against_the_max_batch_size() -> None:
    q = queue(max_batch_size=8, max_delay=1.0)
    q.offer("a", 3, KEY, now=0.0)
    q.offer("b", 3, KEY, now=0.0)
    assert q.due_in(now=0.0) == pytest.approx(1.0)
    q.offer("c", 3, KEY, now=0.0)
    assert q.due_in(now=0.0) == 0.0
    batch = q.take()
    assert names(batch) == ["a", "b"]  # c would make 9 rows
    assert [p.rows for p in batch] == [3, 3]
    assert names(q.take()) == ["c"]


def test_a_smaller_later_request_fills_the_gap_a_larger_one_left() -> None:
    q = queue(max_batch_size=8)
    q.offer("a", 5, KEY, now=0.0)
    q.offer("big", 4, KEY, now=0.0)
    q.offer("small", 3, KEY, now=0.0)
    q.offer("late", 1, KEY, now=0.0)
    assert names(q.take()) == ["a", "small"]
    assert names(q.take()) == ["big", "late"]


def test_only_requests_with_the_oldest_ones_key_join_its_batch() -> None:
    other = ("input", (7,))
    q = queue(max_batch_size=8)
    q.offer("a", 1, KEY, now=0.0)
    q.offer("x", 1, other, now=0.0)
    q.offer("b", 1, KEY, now=0.0)
    q.offer("y", 1, other, now=0.0)
    assert names(q.take()) == ["a", "b"]
    assert names(q.take()) == ["x", "y"]


def test_other_keys_do_not_count_towards_a_full_batch() -> None:
    q = queue(max_batch_size=2, max_delay=1.0)
    q.offer("a", 1, KEY, now=0.0)
    q.offer("x", 1, ("input", (7,)), now=0.0)
    assert q.due_in(now=0.0) == pytest.approx(1.0)


def test_an_oversized_request_runs_alone_instead_of_starving() -> None:
    q = queue(max_batch_size=4, max_delay=1.0)
    q.offer("huge", 10, KEY, now=0.0)
    q.offer("b", 1, KEY, now=0.0)
    assert q.due_in(now=0.0) == 0.0
    assert names(q.take()) == ["huge"]
    assert names(q.take()) == ["b"]


def test_without_merging_requests_are_due_at_once_and_taken_together() -> None:
    q = queue(max_batch_size=0, max_delay=1.0)
    q.offer("a", 1, KEY, now=0.0)
    q.offer("b", 1, ("other", (7,)), now=0.0)
    assert q.due_in(now=0.0) == 0.0
    assert names(q.take()) == ["a", "b"]
    assert q.take() == []


def test_a_deadline_within_the_tolerance_is_due_now() -> None:
    q = BatchQueue(BatchPolicy(8, max_delay=0.002, max_queue_size=10, tolerance=0.0005))
    q.offer("a", 1, KEY, now=0.0)
    assert q.due_in(now=0.0) == pytest.approx(0.002)
    assert q.due_in(now=0.0014) == pytest.approx(0.0006)
    assert q.due_in(now=0.0015) == 0.0


def test_the_queue_refuses_past_its_bound_and_accepts_again_after_a_take() -> None:
    q = queue(max_batch_size=2, max_queue=3)
    assert all(q.offer(name, 1, KEY, now=0.0) for name in "abc")
    assert not q.offer("d", 1, KEY, now=0.0)
    assert len(q) == 3
    q.take()
    assert q.offer("d", 1, KEY, now=0.0)
    assert names(q.drain()) == ["c", "d"]
    assert len(q) == 0


def test_the_order_of_requests_left_behind_is_kept() -> None:
    q = queue(max_batch_size=3)
    for name, rows in [("a", 2), ("b", 2), ("c", 1), ("d", 2), ("e", 1)]:
        q.offer(name, rows, KEY, now=0.0)
    assert names(q.take()) == ["a", "c"]
    assert names(q.drain()) == ["b", "d", "e"]


def test_enqueue_time_is_recorded_for_queue_metrics() -> None:
    q = queue()
    q.offer("a", 1, KEY, now=3.5)
    assert q.take()[0].enqueued_at == 3.5


def test_merge_key_separates_trailing_shapes_and_dtypes() -> None:
    a = {"x": np.zeros((2, 4), np.float32)}
    assert merge_key(a) == merge_key({"x": np.ones((5, 4), np.float32)})
    assert merge_key(a) != merge_key({"x": np.zeros((2, 5), np.float32)})
    assert merge_key(a) != merge_key({"x": np.zeros((2, 4), np.float64)})


def test_merge_then_split_gives_each_request_its_own_rows() -> None:
    parts = [
        {"x": np.full((1, 2), 1.0), "t": np.array([["a"]], dtype=object)},
        {"x": np.full((3, 2), 2.0), "t": np.array([["b"], ["c"], ["d"]], dtype=object)},
        {"x": np.full((2, 2), 3.0), "t": np.array([["e"], ["f"]], dtype=object)},
    ]
    merged = merge(parts)
    assert merged["x"].shape == (6, 2)
    assert merged["t"].reshape(-1).tolist() == list("abcdef")
    back = split(merged, [1, 3, 2])
    for original, answer in zip(parts, back, strict=True):
        np.testing.assert_array_equal(original["x"], answer["x"])
        np.testing.assert_array_equal(original["t"], answer["t"])


def test_a_single_request_is_neither_copied_nor_checked() -> None:
    x = np.zeros((3, 2))
    assert merge([{"x": x}])["x"] is x
    assert split({"y": x}, [3])[0]["y"] is x


def test_split_refuses_outputs_without_the_batch_rows() -> None:
    with pytest.raises(ValueError, match="'scores' has shape \\[5\\], not 3 rows"):
        split({"scores": np.zeros(5)}, [1, 2])
    with pytest.raises(ValueError, match="'total' has shape \\[\\]"):
        split({"total": np.array(1.0)}, [1, 2])
