"""A revision's objects: Deployment, ClusterIP Service, and HPA / PDB when scaling asks.

The role label sits on the Deployment's and Service's metadata only: the pod template and the
selectors never mention it, so a promotion rewrites two labels and restarts nothing.
"""

from __future__ import annotations

from sluice_operator import spec
from sluice_operator.builders.pod import pod_selector, pod_template
from sluice_operator.naming import (
    COMPONENT_PREDICTOR,
    LABEL_MODEL_VERSION,
    LABEL_REVISION,
    LABEL_ROLE,
    Manifest,
    child_metadata,
    common_labels,
    isvc_name,
)
from sluice_operator.revisions import Revision
from sluice_operator.settings import GRPC_PORT, HTTP_PORT, Settings


def revision_labels(isvc: str, revision: Revision) -> dict[str, str]:
    """Metadata labels of a revision's Deployment, Service, HPA and PDB."""
    return {
        **common_labels(isvc, COMPONENT_PREDICTOR),
        LABEL_REVISION: revision.name,
        LABEL_ROLE: revision.role,
        LABEL_MODEL_VERSION: revision.model.version,
    }


def autoscaled(scaling: spec.ScalingSpec) -> bool:
    """An HPA owns the replica count when maxReplicas > minReplicas."""
    return scaling.replica_ceiling > scaling.min_replicas


def revision_objects(
    isvc: spec.InferenceService,
    revision: Revision,
    settings: Settings,
    shadow: tuple[str, int] | None,
    *,
    addressed: bool,
) -> list[Manifest]:
    """The Deployment; its own Service when `addressed`; HPA and PodDisruptionBudget when
    scaling asks.

    A revision needs its own Service only while something other than the `<isvc>` Service
    sends to it (the router, or serving pods copying requests to a shadow). Every Service
    costs a ClusterIP, which kube-apiserver allocates one at a time, and rules in every
    node's kube-proxy; most InferenceServices serve one revision and need none.
    """
    name = isvc_name(isvc)
    labels = revision_labels(name, revision)
    scaling = isvc.spec.scaling
    objects = [_deployment(isvc, revision, labels, settings, shadow)]
    if addressed:
        objects.append(_service(isvc, revision, labels))
    if autoscaled(scaling):
        objects.append(_hpa(isvc, revision, labels))
    if scaling.min_replicas >= 2:
        objects.append(_pdb(isvc, revision, labels))
    return objects


def _deployment(
    isvc: spec.InferenceService,
    revision: Revision,
    labels: dict[str, str],
    settings: Settings,
    shadow: tuple[str, int] | None,
) -> Manifest:
    scaling = isvc.spec.scaling
    deployment_spec: Manifest = {
        "selector": {"matchLabels": pod_selector(isvc_name(isvc), revision.name)},
        "revisionHistoryLimit": 3,
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
        },
        "template": pod_template(isvc, revision, settings, shadow),
    }
    if not autoscaled(scaling):
        # With an HPA the replica count is the HPA's; applying it here would fight it.
        deployment_spec["replicas"] = scaling.min_replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_metadata(isvc, revision.name, labels),
        "spec": deployment_spec,
    }


def _service(isvc: spec.InferenceService, revision: Revision, labels: dict[str, str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(isvc, revision.name, labels),
        "spec": {
            "type": "ClusterIP",
            "selector": pod_selector(isvc_name(isvc), revision.name),
            "ports": [
                {"name": "http", "port": HTTP_PORT, "targetPort": "http", "protocol": "TCP"},
                {
                    "name": "grpc",
                    "port": GRPC_PORT,
                    "targetPort": "grpc",
                    "protocol": "TCP",
                    "appProtocol": "grpc",
                },
            ],
        },
    }


def _hpa(isvc: spec.InferenceService, revision: Revision, labels: dict[str, str]) -> Manifest:
    scaling = isvc.spec.scaling
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": child_metadata(isvc, revision.name, labels),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": revision.name,
            },
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.replica_ceiling,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": scaling.target_cpu_utilization_percentage,
                        },
                    },
                }
            ],
        },
    }


def _pdb(isvc: spec.InferenceService, revision: Revision, labels: dict[str, str]) -> Manifest:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": child_metadata(isvc, revision.name, labels),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": pod_selector(isvc_name(isvc), revision.name)},
        },
    }
