"""Where requests go: the spec's wish, what the cluster does now, and the rule between them.

Traffic moves only onto revisions that can take it. Until every revision the spec sends a
share to is available, the traffic the cluster already applies stays as it is (the old stable
keeps answering while a new one starts; a canary gets its share once its pods are up). The
first traffic of a new InferenceService is applied at once: there is nothing to protect.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from sluice_operator.naming import (
    ANNOTATION_TRAFFIC,
    COMPONENT_ROUTER,
    LABEL_COMPONENT,
    LABEL_REVISION,
    Manifest,
)
from sluice_operator.revisions import Revision


@dataclass(frozen=True)
class Traffic:
    """Shares of live requests per revision (percent, summing to 100), and how they are split.

    `via_router` is true while a canary or a sticky header is on: the `<isvc>` Service then
    selects the router, otherwise the single revision's pods directly.
    """

    weights: tuple[tuple[str, int], ...]
    sticky_header: str | None = None
    via_router: bool = False
    shares: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "shares", dict(self.weights))
        if self.weights and sum(self.shares.values()) != 100:
            raise ValueError(f"traffic weights must sum to 100: {self.weights}")

    @property
    def targets(self) -> frozenset[str]:
        """Revisions that receive requests."""
        return frozenset(name for name, weight in self.weights if weight > 0)

    def percent(self, revision: str) -> int:
        """This revision's share of live requests."""
        return self.shares.get(revision, 0)

    def to_json(self) -> str:
        """Stored on the router ConfigMap so the next reconciliation can read it back.

        Weights stay a list: their order decides which hash range each revision gets, so
        reading them back must not reorder them (that would move sticky callers).
        """
        return json.dumps(
            {"weights": [list(pair) for pair in self.weights], "stickyHeader": self.sticky_header}
        )

    @classmethod
    def from_json(cls, text: str) -> Traffic:
        """The inverse of `to_json`, for a router that is in place."""
        data = json.loads(text)
        weights = tuple((str(name), int(weight)) for name, weight in data["weights"])
        return cls(weights=weights, sticky_header=data.get("stickyHeader"), via_router=True)


def desired_traffic(revisions: Iterable[Revision], sticky_header: str | None) -> Traffic:
    """What the spec asks for: stable and canary shares, through the router when needed."""
    serving = [r for r in revisions if r.serving]
    has_canary = any(r.role == "canary" for r in serving)
    return Traffic(
        weights=tuple((r.name, r.traffic_percent) for r in serving),
        sticky_header=sticky_header,
        via_router=has_canary or sticky_header is not None,
    )


def live_traffic(entry: Manifest | None, router_config: Manifest | None) -> Traffic | None:
    """What the cluster does now, read from the `<isvc>` Service and the router ConfigMap."""
    if entry is None:
        return None
    selector: dict[str, str] = entry.get("spec", {}).get("selector") or {}
    if selector.get(LABEL_COMPONENT) == COMPONENT_ROUTER:
        return router_traffic(router_config)
    revision = selector.get(LABEL_REVISION)
    return Traffic(weights=((revision, 100),)) if revision else None


def router_traffic(router_config: Manifest | None) -> Traffic | None:
    """The weights the router ConfigMap was rendered from."""
    if router_config is None:
        return None
    stored = (router_config.get("metadata", {}).get("annotations") or {}).get(ANNOTATION_TRAFFIC)
    return Traffic.from_json(stored) if stored else None


def effective_traffic(
    desired: Traffic,
    live: Traffic | None,
    available: frozenset[str],
    existing: frozenset[str],
) -> Traffic:
    """The traffic to apply now (module docstring has the rule).

    `available`: revisions whose Deployment has all its replicas available;
    `existing`: revisions whose Deployment exists at all.
    """
    if desired.targets <= available or live is None:
        return desired
    if not live.targets <= existing:
        return desired
    return live
