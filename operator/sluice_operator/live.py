"""What exists in the cluster for one InferenceService, as plain manifests, and reading it.

The store (store.py, filled by watches) hands out a `LiveState`; everything else only reads it,
so the pure core can be tested with hand-written objects of exactly the shape the API server
returns.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sluice_operator.naming import (
    ANNOTATION_CONFIG_HASH,
    COMPONENT_ROUTER,
    LABEL_COMPONENT,
    LABEL_REVISION,
    Manifest,
    config_hash,
)

CHILD_KINDS: tuple[tuple[str, str], ...] = (
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
)
"""(apiVersion, kind) of every object type the operator creates; watched by label."""


@dataclass(frozen=True)
class LiveState:
    """Children by kind and name, plus the pods of every revision."""

    objects: Mapping[str, Mapping[str, Manifest]] = field(default_factory=dict)
    pods: tuple[Manifest, ...] = ()

    @classmethod
    def of(cls, items: list[Manifest], pods: list[Manifest] | None = None) -> LiveState:
        """Index a flat list of manifests (tests and the gateway build it this way)."""
        objects: dict[str, dict[str, Manifest]] = {}
        for item in items:
            objects.setdefault(item["kind"], {})[item["metadata"]["name"]] = item
        return cls(objects=objects, pods=tuple(pods or ()))

    def get(self, kind: str, name: str) -> Manifest | None:
        """One child, or None."""
        return self.objects.get(kind, {}).get(name)

    def all(self) -> Iterator[Manifest]:
        """Every child except pods."""
        for by_name in self.objects.values():
            yield from by_name.values()

    def revision_deployments(self) -> dict[str, Manifest]:
        """Deployments of revisions (not the router), by revision name."""
        return {
            labels_of(d)[LABEL_REVISION]: d
            for d in self.objects.get("Deployment", {}).values()
            if LABEL_REVISION in labels_of(d)
        }

    def replica_floor(self, revision: str) -> int:
        """The revision's HPA minReplicas (1 without an HPA)."""
        hpa = self.get("HorizontalPodAutoscaler", revision) or {}
        return _int(hpa.get("spec", {}).get("minReplicas")) or 1

    def router_deployment(self) -> Manifest | None:
        """The router's Deployment, found by its component label."""
        for deployment in self.objects.get("Deployment", {}).values():
            if labels_of(deployment).get(LABEL_COMPONENT) == COMPONENT_ROUTER:
                return deployment
        return None


def labels_of(obj: Manifest) -> dict[str, str]:
    """metadata.labels, empty when absent."""
    return dict(obj.get("metadata", {}).get("labels") or {})


def annotations_of(obj: Manifest) -> dict[str, str]:
    """metadata.annotations, empty when absent."""
    return dict(obj.get("metadata", {}).get("annotations") or {})


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int) else 0


def desired_replicas(deployment: Manifest, floor: int = 1) -> int:
    """spec.replicas (defaulted to 1, moved by an HPA), and at least `floor`: a new
    autoscaled Deployment starts at 1 until its HPA raises it to minReplicas."""
    replicas = deployment.get("spec", {}).get("replicas")
    return max(1 if replicas is None else _int(replicas), floor)


def ready_replicas(deployment: Manifest) -> int:
    """status.readyReplicas."""
    return _int(deployment.get("status", {}).get("readyReplicas"))


def available(deployment: Manifest, floor: int = 1) -> bool:
    """All desired replicas are available: the revision can take its full share of traffic.

    A rolling update with maxUnavailable 0 keeps this true while pods are replaced, so a
    revision that only changes its pod template keeps its traffic.
    """
    want = desired_replicas(deployment, floor)
    have = _int(deployment.get("status", {}).get("availableReplicas"))
    return want >= 1 and have >= want


def rolled_out(deployment: Manifest, floor: int = 1) -> bool:
    """The Deployment controller has seen the latest spec and every pod runs it, available."""
    meta = deployment.get("metadata", {})
    status = deployment.get("status", {})
    want = desired_replicas(deployment, floor)
    return (
        _int(status.get("observedGeneration")) >= _int(meta.get("generation"))
        and _int(status.get("updatedReplicas")) >= want
        and _int(status.get("availableReplicas")) >= want
        and _int(status.get("replicas")) <= want
    )


def router_serving_config(router: Manifest, config_map: Manifest | None) -> bool:
    """Every router pod runs the config the ConfigMap holds now."""
    if config_map is None:
        return False
    text = (config_map.get("data") or {}).get("nginx.conf", "")
    template = router.get("spec", {}).get("template", {})
    expected = annotations_of(template).get(ANNOTATION_CONFIG_HASH)
    return expected == config_hash(text) and rolled_out(router)
