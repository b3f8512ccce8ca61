"""Names, labels and hashes every builder agrees on.

Revisions are named by content: the same model and runtime spec always give the same name, so a
promotion (the stable spec becoming what the canary already runs) finds the canary's Deployment
under the name it already has, and nothing is recreated.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sluice_operator import spec

Manifest = dict[str, Any]
"""A Kubernetes object as the API server's JSON (camelCase keys)."""

FIELD_MANAGER = "sluice-operator"

LABEL_ISVC = "sluice.dev/isvc"
LABEL_REVISION = "sluice.dev/revision"
LABEL_ROLE = "sluice.dev/role"
LABEL_MODEL_VERSION = "sluice.dev/model-version"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"

COMPONENT_PREDICTOR = "predictor"
COMPONENT_ROUTER = "router"

ANNOTATION_APPLIED_HASH = "sluice.dev/applied-hash"
"""Hash of the object as the operator last applied it: equal hash, nothing to write."""
ANNOTATION_CONFIG_HASH = "sluice.dev/config-hash"
"""On the router's pod template: a new nginx config rolls the router pods."""
ANNOTATION_TRAFFIC = "sluice.dev/traffic"
"""On the router ConfigMap: the weights it routes by, as JSON, so traffic can be read back."""

HASH_LENGTH = 10
"""Characters of the content hash in revision names: 52 + 1 + 10 fits a 63-character label."""


def content_hash(value: Any, length: int = 64) -> str:
    """Hex sha256 of the canonical JSON of `value` (sorted keys, no whitespace)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def config_hash(config: str) -> str:
    """The router pod-template annotation: a changed nginx config rolls the router pods."""
    return content_hash(config, 16)


def revision_name(isvc: str, model: spec.ModelSpec, runtime: spec.RuntimeSpec) -> str:
    """`<isvc>-<hash of model+runtime>`.

    Fields left at their defaults do not enter the hash, so a new defaulted field in a later
    schema keeps every existing revision's name (and pods).
    """
    content = {
        "model": model.model_dump(mode="json", exclude_defaults=True),
        "runtime": runtime.model_dump(mode="json", exclude_defaults=True),
    }
    return f"{isvc}-{content_hash(content, HASH_LENGTH)}"


def router_name(isvc: str) -> str:
    """The router's Deployment, ConfigMap and PodDisruptionBudget."""
    return f"{isvc}-router"


def common_labels(isvc: str, component: str) -> dict[str, str]:
    """Labels every child carries; `sluice.dev/isvc` is what the operator lists children by."""
    return {
        LABEL_NAME: "sluice",
        LABEL_MANAGED_BY: FIELD_MANAGER,
        LABEL_COMPONENT: component,
        LABEL_ISVC: isvc,
    }


def service_host(service: str, namespace: str, cluster_domain: str) -> str:
    """The in-cluster DNS name of a Service."""
    return f"{service}.{namespace}.svc.{cluster_domain}"


def isvc_name(isvc: spec.InferenceService) -> str:
    """metadata.name, which the resource's own rules make required."""
    if not isvc.metadata.name:
        raise spec.SpecError(["metadata.name: Required value"])
    return isvc.metadata.name


def owner_references(isvc: spec.InferenceService) -> list[Manifest]:
    """The controller reference every child carries, so deleting the InferenceService
    garbage-collects them; empty while rendering without a cluster (no uid yet)."""
    if not isvc.metadata.uid:
        return []
    return [
        {
            "apiVersion": f"{spec.API_GROUP}/{spec.API_VERSION}",
            "kind": spec.KIND,
            "name": isvc_name(isvc),
            "uid": isvc.metadata.uid,
            "controller": True,
        }
    ]


def isvc_namespace(isvc: spec.InferenceService) -> str:
    """metadata.namespace; a manifest rendered without one lands in `default`, as kubectl's."""
    return isvc.metadata.namespace or "default"


def child_metadata(isvc: spec.InferenceService, name: str, labels: dict[str, str]) -> Manifest:
    """Name, namespace, labels and the controller owner reference of one child object."""
    meta: Manifest = {"name": name, "namespace": isvc_namespace(isvc), "labels": labels}
    owners = owner_references(isvc)
    if owners:
        meta["ownerReferences"] = owners
    return meta
