"""Building blocks for the operator's pure tests: InferenceServices and live cluster objects.

Live objects are the desired manifests plus what the API server and controllers add (uid,
generation, status), shaped as the API returns them, so the pure core reads them as it reads
real ones. `settle` plays the part of the cluster between two passes for a plan's writes.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from sluice_operator import desired, spec
from sluice_operator.live import LiveState, labels_of
from sluice_operator.naming import LABEL_ISVC, LABEL_REVISION, LABEL_ROLE, Manifest
from sluice_operator.plan import Plan
from sluice_operator.settings import Settings

from tests.data.isvc_cases import ROOT, load, merge

UID = "0f5a6c1e-0000-4000-8000-000000000001"
NAMESPACE = "risk"
SETTINGS = Settings()
DIGEST = "sha256:" + "ab" * 32


def model(version: str, name: str = "iris") -> dict[str, Any]:
    """A model block for manifests."""
    return {"name": name, "version": version, "uri": f"mlflow://{name}/{version}"}


def isvc(patch: dict[str, Any] | None = None, generation: int = 1) -> spec.InferenceService:
    """examples/basic.yaml (iris, version 1) in namespace `risk`, merged with `patch`."""
    base = load(ROOT / "examples" / "basic.yaml")
    base["metadata"].update({"namespace": NAMESPACE, "uid": UID, "generation": generation})
    return spec.parse(merge(base, patch or {}))


def with_canary(version: str, percent: int, **spec_patch: Any) -> spec.InferenceService:
    """iris 1 with a canary `version` taking `percent`."""
    body = {"canary": {"model": model(version), "trafficPercent": percent}, **spec_patch}
    return isvc({"spec": body})


def as_live(obj: Manifest, available: bool = True) -> Manifest:
    """A desired manifest as the API server returns it once stored (and rolled out)."""
    live = copy.deepcopy(obj)
    meta = live["metadata"]
    meta.setdefault("uid", f"uid-{obj['kind']}-{meta['name']}")
    meta["generation"] = 1
    meta["resourceVersion"] = "1"
    meta["ownerReferences"] = [{"kind": spec.KIND, "name": "iris", "uid": UID, "controller": True}]
    if obj["kind"] == "Deployment":
        replicas = live["spec"].setdefault("replicas", 1)
        ready = replicas if available else 0
        live["status"] = {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
        }
    if obj["kind"] == "Service":
        live["spec"]["clusterIP"] = "10.96.0.10"
        live["spec"]["sessionAffinity"] = "None"
    return live


def live_of(
    objects: list[Manifest] | tuple[Manifest, ...],
    unavailable: set[str] | frozenset[str] = frozenset(),
    pods: list[Manifest] | None = None,
) -> LiveState:
    """LiveState of stored objects; Deployments named in `unavailable` have no pod ready."""
    return LiveState.of(
        [as_live(o, o["metadata"]["name"] not in unavailable) for o in objects], pods
    )


def settle(
    plan: Plan, live: LiveState, unavailable: set[str] | frozenset[str] = frozenset()
) -> LiveState:
    """The cluster after the plan's writes (new Deployments roll out unless `unavailable`)."""
    items = {(o["kind"], o["metadata"]["name"]): o for o in live.all()}
    for obj in plan.apply:
        items[(obj["kind"], obj["metadata"]["name"])] = as_live(
            obj, obj["metadata"]["name"] not in unavailable
        )
    for ref in plan.drain:
        stored = copy.deepcopy(items[(ref.kind, ref.name)])
        stored["metadata"]["labels"][LABEL_ROLE] = "draining"
        items[(ref.kind, ref.name)] = stored
    for ref in plan.delete:
        items.pop((ref.kind, ref.name), None)
    return LiveState.of(list(items.values()), list(live.pods))


def build(resource: spec.InferenceService, live: LiveState | None = None) -> desired.Desired:
    """The desired state with the default settings."""
    return desired.build(resource, SETTINGS, live)


def find(objects: Iterable[Manifest], kind: str, name: str | None = None) -> Manifest:
    """The one object of `kind` (and `name`) among `objects`."""
    objects = list(objects)
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} in {[o['kind'] for o in objects]}"
    return found[0]


def pod(revision: str, name: str, status: dict[str, Any], **meta: Any) -> Manifest:
    """A pod of `revision` with the given status."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {LABEL_ISVC: "iris", LABEL_REVISION: revision},
            **meta,
        },
        "status": status,
    }


def revision_of(obj: Manifest) -> str:
    """The revision label of a child."""
    return labels_of(obj)[LABEL_REVISION]
