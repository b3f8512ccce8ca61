"""Desired vs live -> the writes to make; an empty plan when nothing changed.

An object is applied when it is missing, when its `sluice.dev/applied-hash` differs from the
desired object's hash, or when a label the operator sets has another value (a relabel by
`drain` below, undone by a later spec). Server-side defaults and other writers' fields (an
HPA's replica count, the controllers' status) never cause a write.

When revisions are deleted: a revision no role uses becomes `draining` and is deleted only when
no traffic can reach it any more, judged from live objects, never from what was just applied:
- the `<isvc>` Service does not select its pods;
- the router ConfigMap does not list it, and every router pod runs that ConfigMap's config
  (while the router rolls, old pods may still send to any revision, so nothing is deleted);
- no Deployment's pod template sends it shadow copies.
Since a pass reads the cluster before it writes, the earliest deletion is in the pass after the
one that moved traffic away. Terminating pods then drain in-flight requests themselves.
The router is deleted once the `<isvc>` Service no longer selects it. The same rule keeps a
serving revision's own Service, no longer desired once the router is gone, while the live
router or a shadow sender may still address it by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sluice_operator.desired import Desired
from sluice_operator.live import LiveState, annotations_of, labels_of, router_serving_config
from sluice_operator.naming import (
    ANNOTATION_APPLIED_HASH,
    COMPONENT_ROUTER,
    LABEL_COMPONENT,
    LABEL_REVISION,
    LABEL_ROLE,
    Manifest,
    router_name,
)
from sluice_operator.traffic import live_traffic, router_traffic

DRAINING = "draining"
RELABELED_KINDS = ("Deployment", "Service")


@dataclass(frozen=True)
class ObjectRef:
    """Enough to address one namespaced object."""

    api_version: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: Manifest) -> ObjectRef:
        """The reference of a manifest."""
        meta = obj["metadata"]
        return cls(obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


@dataclass(frozen=True)
class Plan:
    """Server-side applies, role relabels (merge patches) and deletions, in that order."""

    apply: tuple[Manifest, ...] = ()
    drain: tuple[ObjectRef, ...] = ()
    delete: tuple[ObjectRef, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing to write."""
        return not (self.apply or self.drain or self.delete)


def make_plan(desired: Desired, live: LiveState, isvc: str, owner_uid: str | None) -> Plan:
    """Compare; `owner_uid` keeps deletions to objects this InferenceService owns."""
    wanted = {(o["kind"], o["metadata"]["name"]) for o in desired.objects}
    to_apply = tuple(o for o in desired.objects if _changed(o, live))
    revisions = {r.name for r in desired.revisions}
    addressed = _revisions_addressed(live, isvc)
    in_use = addressed | _entry_targets(live, isvc)
    router_in_use = _router_selected(live, isvc)
    drain: list[ObjectRef] = []
    delete: list[ObjectRef] = []
    for obj in live.all():
        key = (obj["kind"], obj["metadata"]["name"])
        if key in wanted or not _owned(obj, owner_uid):
            continue
        obj_labels = labels_of(obj)
        revision = obj_labels.get(LABEL_REVISION)
        if revision is not None and revision not in revisions and revision in in_use:
            if obj["kind"] in RELABELED_KINDS and obj_labels.get(LABEL_ROLE) != DRAINING:
                drain.append(ObjectRef.of(obj))
        elif not _still_used(obj, addressed, router_in_use):
            delete.append(ObjectRef.of(obj))
    return Plan(apply=to_apply, drain=tuple(drain), delete=tuple(delete))


def _still_used(obj: Manifest, addressed: frozenset[str], router_in_use: bool) -> bool:
    """A revision's own Service the live router or a shadow sender may still call, or the
    router while the `<isvc>` Service selects it: kept although no longer desired."""
    labels = labels_of(obj)
    if obj["kind"] == "Service" and labels.get(LABEL_REVISION) in addressed:
        return True
    return labels.get(LABEL_COMPONENT) == COMPONENT_ROUTER and router_in_use


def _changed(obj: Manifest, live: LiveState) -> bool:
    current = live.get(obj["kind"], obj["metadata"]["name"])
    if current is None:
        return True
    if (
        annotations_of(current).get(ANNOTATION_APPLIED_HASH)
        != annotations_of(obj)[ANNOTATION_APPLIED_HASH]
    ):
        return True
    current_labels = labels_of(current)
    return any(current_labels.get(k) != v for k, v in labels_of(obj).items())


def _owned(obj: Manifest, owner_uid: str | None) -> bool:
    owners = obj.get("metadata", {}).get("ownerReferences") or []
    return owner_uid is not None and any(o.get("uid") == owner_uid for o in owners)


def _router_selected(live: LiveState, isvc: str) -> bool:
    entry = live.get("Service", isvc)
    selector = (entry or {}).get("spec", {}).get("selector") or {}
    return selector.get(LABEL_COMPONENT) == COMPONENT_ROUTER


def _entry_targets(live: LiveState, isvc: str) -> frozenset[str]:
    """Revisions the live `<isvc>` Service sends to, directly or through the router."""
    current = live_traffic(live.get("Service", isvc), live.get("ConfigMap", router_name(isvc)))
    return current.targets if current is not None else frozenset()


def _revisions_addressed(live: LiveState, isvc: str) -> frozenset[str]:
    """Revisions the live router or a live shadow sender may still send to by their own
    Service's name."""
    deployments = live.revision_deployments()
    config_map = live.get("ConfigMap", router_name(isvc))
    router = live.router_deployment()
    if router is not None and not router_serving_config(router, config_map):
        return frozenset(deployments)
    used: set[str] = set()
    if router is not None:
        routed = router_traffic(config_map)
        used |= routed.targets if routed is not None else set(deployments)
    used |= {target for d in deployments.values() for target in _shadow_targets(d, deployments)}
    return frozenset(used)


def _shadow_targets(deployment: Manifest, revisions: dict[str, Manifest]) -> Iterator[str]:
    template = deployment.get("spec", {}).get("template", {}).get("spec", {})
    for container in template.get("containers") or []:
        for env in container.get("env") or []:
            if env.get("name") == "SLUICE_SHADOW_URL":
                url = str(env.get("value", ""))
                yield from (name for name in revisions if f"//{name}." in url)
