"""spec (+ what is live) -> every object that should exist, each stamped with its own hash.

Live state enters only through the traffic rule (`traffic.effective_traffic`) and one more
guard: the `<isvc>` Service moves from a revision to the router only once router pods are
available, so switching the entry point never leaves callers without endpoints. With no live
state (`sluice render`) the spec's traffic is rendered as is.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from sluice_operator import spec
from sluice_operator.builders.revision import revision_objects
from sluice_operator.builders.traffic import entry_service, router_objects
from sluice_operator.live import LiveState, available
from sluice_operator.naming import (
    ANNOTATION_APPLIED_HASH,
    Manifest,
    content_hash,
    isvc_name,
    isvc_namespace,
    router_name,
    service_host,
)
from sluice_operator.revisions import Revision, revisions_of
from sluice_operator.settings import HTTP_PORT, Settings
from sluice_operator.traffic import Traffic, desired_traffic, effective_traffic, live_traffic


@dataclass(frozen=True)
class Desired:
    """The outcome of one pure pass.

    `wanted`: the spec's traffic; `traffic`: what the router/Service will carry now;
    `entry`: the revision the `<isvc>` Service selects directly, or None for the router.
    """

    revisions: tuple[Revision, ...]
    wanted: Traffic
    traffic: Traffic
    entry: str | None
    objects: tuple[Manifest, ...]

    @property
    def applied(self) -> Traffic:
        """The shares callers actually get once these objects are applied."""
        if self.entry is not None:
            return Traffic(weights=((self.entry, 100),))
        return self.traffic


def build(isvc: spec.InferenceService, settings: Settings, live: LiveState | None) -> Desired:
    """All objects for this InferenceService, in the order they are best applied."""
    revisions = revisions_of(isvc)
    wanted = desired_traffic(revisions, isvc.spec.traffic.sticky_header)
    traffic, entry = _traffic_now(isvc, wanted, live)
    shadow = _shadow_target(isvc, revisions, settings)
    objects: list[Manifest] = []
    for revision in revisions:
        serving_shadow = shadow if revision.serving else None
        addressed = traffic.via_router or revision.role == "shadow"
        objects += revision_objects(isvc, revision, settings, serving_shadow, addressed=addressed)
    if traffic.via_router:
        objects += router_objects(isvc, traffic, settings)
    objects.append(entry_service(isvc, entry))
    return Desired(
        revisions=revisions,
        wanted=wanted,
        traffic=traffic,
        entry=entry,
        objects=tuple(stamp(o) for o in objects),
    )


def stamp(obj: Manifest) -> Manifest:
    """A copy annotated with the hash of its own content (the plan compares these)."""
    stamped = copy.deepcopy(obj)
    meta = stamped.setdefault("metadata", {})
    meta["annotations"] = {
        **(meta.get("annotations") or {}),
        ANNOTATION_APPLIED_HASH: content_hash(obj),
    }
    return stamped


def _traffic_now(
    isvc: spec.InferenceService, wanted: Traffic, live: LiveState | None
) -> tuple[Traffic, str | None]:
    if live is None:
        return wanted, None if wanted.via_router else _single(wanted)
    name = isvc_name(isvc)
    current = live_traffic(live.get("Service", name), live.get("ConfigMap", router_name(name)))
    deployments = live.revision_deployments()
    ready = frozenset(n for n, d in deployments.items() if available(d, live.replica_floor(n)))
    traffic = effective_traffic(wanted, current, ready, frozenset(deployments))
    if not traffic.via_router:
        return traffic, _single(traffic)
    router = live.router_deployment()
    router_up = router is not None and available(router)
    holding_direct = (
        current is not None and not current.via_router and current.targets <= set(deployments)
    )
    if not router_up and holding_direct and current is not None:
        return traffic, _single(current)
    return traffic, None


def _single(traffic: Traffic) -> str:
    (revision,) = traffic.targets
    return revision


def _shadow_target(
    isvc: spec.InferenceService, revisions: tuple[Revision, ...], settings: Settings
) -> tuple[str, int] | None:
    for revision in revisions:
        if revision.role == "shadow":
            host = service_host(revision.name, isvc_namespace(isvc), settings.cluster_domain)
            return f"http://{host}:{HTTP_PORT}", revision.mirror_percent
    return None
