"""Traffic: the spec's wish, reading it back from live objects, and the rule between them."""

from __future__ import annotations

import pytest
from sluice_operator.naming import (
    ANNOTATION_TRAFFIC,
    COMPONENT_ROUTER,
    LABEL_COMPONENT,
    LABEL_ISVC,
    LABEL_REVISION,
)
from sluice_operator.revisions import revisions_of
from sluice_operator.traffic import (
    Traffic,
    desired_traffic,
    effective_traffic,
    live_traffic,
    router_traffic,
)

from tests.unit.operator.kit import isvc, model, with_canary

SPLIT = Traffic(weights=(("s", 90), ("c", 10)), via_router=True)
DIRECT_OLD = Traffic(weights=(("old", 100),))


def test_one_stable_goes_direct() -> None:
    wanted = desired_traffic(revisions_of(isvc()), None)
    assert not wanted.via_router
    assert wanted.weights == ((revisions_of(isvc())[0].name, 100),)


def test_a_canary_or_a_sticky_header_needs_the_router() -> None:
    assert desired_traffic(revisions_of(with_canary("2", 0)), None).via_router
    sticky = desired_traffic(revisions_of(isvc()), "x-user-id")
    assert sticky.via_router
    assert sticky.sticky_header == "x-user-id"


def test_shadow_takes_no_live_share() -> None:
    revisions = revisions_of(isvc({"spec": {"shadow": {"model": model("3")}}}))
    wanted = desired_traffic(revisions, None)
    assert [name for name, _ in wanted.weights] == [revisions[0].name]


def test_weights_must_sum_to_100() -> None:
    with pytest.raises(ValueError, match="sum to 100"):
        Traffic(weights=(("a", 60), ("b", 30)))


def test_targets_exclude_zero_shares() -> None:
    assert Traffic(weights=(("a", 100), ("b", 0))).targets == frozenset({"a"})


def test_json_round_trip() -> None:
    sticky = Traffic(weights=(("a", 50), ("b", 50)), sticky_header="x-u", via_router=True)
    assert Traffic.from_json(sticky.to_json()) == sticky


def test_live_traffic_from_a_direct_service() -> None:
    entry = {"spec": {"selector": {LABEL_ISVC: "iris", LABEL_REVISION: "iris-abc"}}}
    assert live_traffic(entry, None) == Traffic(weights=(("iris-abc", 100),))


def test_live_traffic_from_the_router() -> None:
    entry = {"spec": {"selector": {LABEL_ISVC: "iris", LABEL_COMPONENT: COMPONENT_ROUTER}}}
    config = {"metadata": {"annotations": {ANNOTATION_TRAFFIC: SPLIT.to_json()}}}
    assert live_traffic(entry, config) == SPLIT
    assert router_traffic(config) == SPLIT
    assert live_traffic(entry, None) is None
    assert live_traffic(None, config) is None


def test_spec_applies_once_its_targets_are_available() -> None:
    assert (
        effective_traffic(SPLIT, DIRECT_OLD, frozenset({"s", "c"}), frozenset({"s", "c", "old"}))
        == SPLIT
    )


def test_traffic_holds_while_a_target_is_not_available() -> None:
    held = effective_traffic(
        SPLIT, DIRECT_OLD, frozenset({"s", "old"}), frozenset({"s", "c", "old"})
    )
    assert held == DIRECT_OLD


def test_first_traffic_applies_at_once() -> None:
    assert effective_traffic(SPLIT, None, frozenset(), frozenset()) == SPLIT


def test_no_holding_on_to_revisions_that_are_gone() -> None:
    assert effective_traffic(SPLIT, DIRECT_OLD, frozenset(), frozenset({"s", "c"})) == SPLIT


def test_a_zero_percent_canary_need_not_be_available() -> None:
    wanted = Traffic(weights=(("s", 100), ("c", 0)), via_router=True)
    assert (
        effective_traffic(wanted, DIRECT_OLD, frozenset({"s"}), frozenset({"s", "old"})) == wanted
    )
