"""The address callers use (`<isvc>` Service) and, while a split is on, the router behind it."""

from __future__ import annotations

from sluice_operator import router, spec
from sluice_operator.builders.pod import pod_selector
from sluice_operator.naming import (
    ANNOTATION_CONFIG_HASH,
    ANNOTATION_TRAFFIC,
    COMPONENT_ROUTER,
    LABEL_COMPONENT,
    LABEL_ISVC,
    Manifest,
    child_metadata,
    common_labels,
    config_hash,
    isvc_name,
    isvc_namespace,
    router_name,
    service_host,
)
from sluice_operator.settings import (
    GRPC_PORT,
    HTTP_PORT,
    ROUTER_HEALTH_PORT,
    SERVICE_GRPC_PORT,
    SERVICE_HTTP_PORT,
    Settings,
)
from sluice_operator.traffic import Traffic

COMPONENT_ENTRYPOINT = "entrypoint"
ROUTER_CONFIG_DIR = "/etc/sluice-router"
ROUTER_WORKERS = "2"
ROUTER_PRESTOP_SECONDS = 5
"""Time for endpoint removal to reach every proxy before nginx starts its graceful quit."""


def router_selector(isvc: str) -> dict[str, str]:
    """How the `<isvc>` Service and the router Deployment select router pods."""
    return {LABEL_ISVC: isvc, LABEL_COMPONENT: COMPONENT_ROUTER}


def entry_service(isvc: spec.InferenceService, revision: str | None) -> Manifest:
    """`<isvc>`: selects one revision's pods directly, or the router when `revision` is None."""
    name = isvc_name(isvc)
    selector = router_selector(name) if revision is None else pod_selector(name, revision)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(isvc, name, common_labels(name, COMPONENT_ENTRYPOINT)),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {
                    "name": "http",
                    "port": SERVICE_HTTP_PORT,
                    "targetPort": "http",
                    "protocol": "TCP",
                },
                {
                    "name": "grpc",
                    "port": SERVICE_GRPC_PORT,
                    "targetPort": "grpc",
                    "protocol": "TCP",
                    "appProtocol": "grpc",
                },
            ],
        },
    }


def router_config(isvc: spec.InferenceService, traffic: Traffic, settings: Settings) -> str:
    """The nginx.conf for this traffic, with revision Services as upstreams."""
    namespace = isvc_namespace(isvc)
    upstreams = tuple(
        router.Upstream(
            revision=revision,
            http=f"{service_host(revision, namespace, settings.cluster_domain)}:{HTTP_PORT}",
            grpc=f"{service_host(revision, namespace, settings.cluster_domain)}:{GRPC_PORT}",
            weight=weight,
        )
        for revision, weight in traffic.weights
    )
    return router.render(
        router.RouterConfig(
            upstreams=upstreams,
            sticky_header=traffic.sticky_header,
            worker_processes=ROUTER_WORKERS,
        )
    )


def router_objects(
    isvc: spec.InferenceService, traffic: Traffic, settings: Settings
) -> list[Manifest]:
    """ConfigMap, Deployment, and a PodDisruptionBudget when more than one router runs."""
    name = isvc_name(isvc)
    labels = common_labels(name, COMPONENT_ROUTER)
    config = router_config(isvc, traffic, settings)
    config_map: Manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            **child_metadata(isvc, router_name(name), labels),
            "annotations": {ANNOTATION_TRAFFIC: traffic.to_json()},
        },
        "data": {"nginx.conf": config},
    }
    objects = [config_map, _router_deployment(isvc, labels, config_hash(config), settings)]
    if settings.router_replicas >= 2:
        objects.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": child_metadata(isvc, router_name(name), labels),
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": router_selector(name)}},
            }
        )
    return objects


def _router_deployment(
    isvc: spec.InferenceService, labels: dict[str, str], digest: str, settings: Settings
) -> Manifest:
    name = isvc_name(isvc)
    probe = {
        "httpGet": {"path": "/healthz", "port": "health"},
        "periodSeconds": 5,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }
    container: Manifest = {
        "name": "nginx",
        "image": settings.router_image,
        "command": ["nginx", "-e", "stderr", "-c", f"{ROUTER_CONFIG_DIR}/nginx.conf"],
        "ports": [
            {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"},
            {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
            {"name": "health", "containerPort": ROUTER_HEALTH_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": probe,
        "livenessProbe": {**probe, "periodSeconds": 10},
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(ROUTER_PRESTOP_SECONDS)]}}},
        "resources": {
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"memory": "256Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": ROUTER_CONFIG_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    uid = settings.router_run_as_user
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": child_metadata(isvc, router_name(name), labels),
        "spec": {
            "replicas": settings.router_replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": router_selector(name)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {
                    "labels": {**labels, **router_selector(name)},
                    "annotations": {ANNOTATION_CONFIG_HASH: digest},
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": settings.drain_seconds + 10,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": uid,
                        "runAsGroup": uid,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": router_name(name)}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }
