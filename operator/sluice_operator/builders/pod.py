"""The pod template of a revision: fetch the pinned model, then serve it.

Nothing here depends on the revision's role, so a promotion (a role change) leaves the
template, and therefore the running pods, untouched.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from sluice_operator import spec
from sluice_operator.naming import (
    COMPONENT_PREDICTOR,
    LABEL_COMPONENT,
    LABEL_ISVC,
    LABEL_MODEL_VERSION,
    LABEL_REVISION,
    Manifest,
    isvc_name,
)
from sluice_operator.revisions import Revision
from sluice_operator.settings import GRPC_PORT, HTTP_PORT, Settings

GPU_RESOURCE = "nvidia.com/gpu"
GPU_NODE_LABEL = "nvidia.com/gpu.present"
MODEL_DIR = "/var/lib/sluice/model"
CACHE_DIR = "/var/lib/sluice/cache"
FETCH_CONTAINER = "fetch"
RUNTIME_CONTAINER = "runtime"
STARTUP_PROBE_SECONDS = 600
"""Warm-up of a large model on a cold GPU can take minutes; the fetch runs before, in init."""


def pod_selector(isvc: str, revision: str) -> dict[str, str]:
    """The labels a revision's Deployment and Service select its pods by (never the role)."""
    return {LABEL_ISVC: isvc, LABEL_REVISION: revision}


def pod_template(
    isvc: spec.InferenceService,
    revision: Revision,
    settings: Settings,
    shadow: tuple[str, int] | None,
) -> Manifest:
    """`shadow`: (URL of the shadow revision, percent) for serving revisions, else None."""
    pod = isvc.spec.pod
    runtime = isvc.spec.runtime
    labels = {
        **pod.labels,
        **pod_selector(isvc_name(isvc), revision.name),
        LABEL_COMPONENT: COMPONENT_PREDICTOR,
        LABEL_MODEL_VERSION: revision.model.version,
    }
    annotations = {
        **pod.annotations,
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(HTTP_PORT),
        "prometheus.io/path": "/metrics",
    }
    image = runtime.image or settings.runtime_image
    pod_spec: Manifest = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": settings.drain_seconds + 10,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_user,
            "fsGroup": settings.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [_fetch_container(revision.model, runtime, image)],
        "containers": [_runtime_container(revision.model, runtime, image, settings, shadow)],
        "volumes": [
            {"name": "model", "emptyDir": {}},
            {"name": "cache", "emptyDir": {}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    pod_spec.update(_scheduling(isvc.spec))
    return {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec}


def uses_gpu(runtime: spec.RuntimeSpec) -> bool:
    """A GPU is asked for (limits or requests) with a count above zero."""
    for quantities in (runtime.resources.limits, runtime.resources.requests):
        if str(quantities.get(GPU_RESOURCE, "0")) not in ("0", ""):
            return True
    return False


def cpu_threads(runtime: spec.RuntimeSpec) -> int | None:
    """Inference threads for the pod's CPU share (limit, else request), rounded up.

    Without it onnxruntime starts one thread per host core, and a pod limited to 2 CPUs on a
    64-core node spends its quota on contention. None when the spec sets no CPU.
    """
    resources = runtime.resources
    quantity = resources.limits.get("cpu", resources.requests.get("cpu"))
    if quantity is None:
        return None
    text = str(quantity)
    cores = Decimal(text[:-1]) / 1000 if text.endswith("m") else Decimal(text)
    return max(1, math.ceil(cores))


def _security_context() -> Manifest:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }


def _user_env(runtime: spec.RuntimeSpec) -> list[Manifest]:
    return [e.model_dump(mode="json", by_alias=True, exclude_none=True) for e in runtime.env]


def _resources(runtime: spec.RuntimeSpec) -> Manifest:
    resources = runtime.resources.model_dump(mode="json", by_alias=True)
    limits = dict(resources.get("limits") or {})
    requests = dict(resources.get("requests") or {})
    if GPU_RESOURCE in requests and GPU_RESOURCE not in limits:
        limits[GPU_RESOURCE] = requests[GPU_RESOURCE]  # extended resources need a limit
    out: Manifest = {}
    if requests:
        out["requests"] = {k: str(v) for k, v in requests.items()}
    if limits:
        out["limits"] = {k: str(v) for k, v in limits.items()}
    return out


def _fetch_container(model: spec.ModelSpec, runtime: spec.RuntimeSpec, image: str) -> Manifest:
    args = ["fetch", "--model-uri", model.uri, "--dest", MODEL_DIR]
    if model.digest:
        args += ["--digest", model.digest]
    container: Manifest = {
        "name": FETCH_CONTAINER,
        "image": image,
        "command": ["sluice-runtime"],
        "args": args,
        "env": [*_user_env(runtime), {"name": "SLUICE_CACHE_DIR", "value": CACHE_DIR}],
        "securityContext": _security_context(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": "model", "mountPath": MODEL_DIR},
            {"name": "cache", "mountPath": CACHE_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    resources = _resources(runtime)
    if resources:
        # The fetch needs memory and CPU, never a GPU.
        container["resources"] = {
            key: {k: v for k, v in values.items() if k != GPU_RESOURCE}
            for key, values in resources.items()
        }
    if runtime.image_pull_policy:
        container["imagePullPolicy"] = runtime.image_pull_policy
    return container


def _runtime_env(
    model: spec.ModelSpec,
    runtime: spec.RuntimeSpec,
    settings: Settings,
    shadow: tuple[str, int] | None,
) -> list[Manifest]:
    values: list[tuple[str, str]] = [
        ("SLUICE_MODEL_NAME", model.name),
        ("SLUICE_MODEL_VERSION", model.version),
        ("SLUICE_MODEL_URI", f"file://{MODEL_DIR}/model.onnx"),
    ]
    if model.digest:
        values.append(("SLUICE_DIGEST", model.digest))
    values += [
        ("SLUICE_HOST", "0.0.0.0"),
        ("SLUICE_HTTP_PORT", str(HTTP_PORT)),
        ("SLUICE_GRPC_PORT", str(GRPC_PORT)),
        ("SLUICE_MAX_BATCH_SIZE", str(runtime.batching.max_batch_size)),
        ("SLUICE_MAX_BATCH_DELAY_US", str(runtime.batching.max_delay_microseconds)),
        ("SLUICE_WARMUP_REQUESTS", str(runtime.warmup.requests)),
        ("SLUICE_DEVICE", runtime.device),
        ("SLUICE_CACHE_DIR", CACHE_DIR),
        ("SLUICE_DRAIN_SECONDS", str(settings.drain_seconds)),
    ]
    if shadow is not None:
        values += [("SLUICE_SHADOW_URL", shadow[0]), ("SLUICE_SHADOW_PERCENT", str(shadow[1]))]
    threads = cpu_threads(runtime)
    user_names = {e.name for e in runtime.env}
    if threads is not None and "SLUICE_INTRA_OP_THREADS" not in user_names:
        values.append(("SLUICE_INTRA_OP_THREADS", str(threads)))
    ours = {name for name, _ in values}
    # The user's variables come first and never shadow the ones the operator sets.
    return [
        *(e for e in _user_env(runtime) if e["name"] not in ours),
        *({"name": name, "value": value} for name, value in values),
    ]


def _probe(path: str, period: int, failures: int) -> Manifest:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def _runtime_container(
    model: spec.ModelSpec,
    runtime: spec.RuntimeSpec,
    image: str,
    settings: Settings,
    shadow: tuple[str, int] | None,
) -> Manifest:
    container: Manifest = {
        "name": RUNTIME_CONTAINER,
        "image": image,
        "command": ["sluice-runtime"],
        "args": ["serve"],
        "env": _runtime_env(model, runtime, settings, shadow),
        "ports": [
            {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"},
            {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
        ],
        "startupProbe": _probe("/v2/health/ready", 5, STARTUP_PROBE_SECONDS // 5),
        "readinessProbe": _probe("/v2/health/ready", 5, 3),
        "livenessProbe": _probe("/v2/health/live", 10, 3),
        "securityContext": _security_context(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": "model", "mountPath": MODEL_DIR, "readOnly": True},
            {"name": "cache", "mountPath": CACHE_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    resources = _resources(runtime)
    if resources:
        container["resources"] = resources
    if runtime.image_pull_policy:
        container["imagePullPolicy"] = runtime.image_pull_policy
    return container


def _scheduling(isvc_spec: spec.InferenceServiceSpec) -> Manifest:
    """Pass-throughs, plus GPU node selection and toleration when a GPU is asked for."""
    pod = isvc_spec.pod
    out: dict[str, Any] = {}
    node_selector = dict(pod.node_selector)
    tolerations = [
        t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in pod.tolerations
    ]
    if uses_gpu(isvc_spec.runtime):
        node_selector.setdefault(GPU_NODE_LABEL, "true")
        gpu_toleration = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
        if gpu_toleration not in tolerations:
            tolerations.append(gpu_toleration)
    if node_selector:
        out["nodeSelector"] = node_selector
    if tolerations:
        out["tolerations"] = tolerations
    if pod.affinity:
        out["affinity"] = pod.affinity
    if pod.service_account_name:
        out["serviceAccountName"] = pod.service_account_name
    if pod.image_pull_secrets:
        out["imagePullSecrets"] = [{"name": s.name} for s in pod.image_pull_secrets]
    return out
