"""Revision objects: pod contract with the runtime, security, scheduling, scaling, ownership."""

from __future__ import annotations

from typing import Any

from sluice_operator.naming import (
    ANNOTATION_APPLIED_HASH,
    LABEL_ISVC,
    LABEL_MODEL_VERSION,
    LABEL_REVISION,
    LABEL_ROLE,
    Manifest,
)

from tests.unit.operator.kit import DIGEST, UID, build, find, isvc, model, with_canary


def _env(container: Manifest) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def _pod_spec(resource: Any = None) -> Manifest:
    objects = build(resource or isvc()).objects
    pod_spec: Manifest = find(objects, "Deployment")["spec"]["template"]["spec"]
    return pod_spec


def test_init_container_fetches_the_pinned_model_into_a_shared_volume() -> None:
    resource = isvc({"spec": {"model": {**model("1"), "digest": DIGEST}}})
    pod = _pod_spec(resource)
    (fetch,) = pod["initContainers"]
    assert fetch["command"] == ["sluice-runtime"]
    assert fetch["args"] == [
        "fetch",
        "--model-uri",
        "mlflow://iris/1",
        "--dest",
        "/var/lib/sluice/model",
        "--digest",
        DIGEST,
    ]
    assert fetch["terminationMessagePolicy"] == "FallbackToLogsOnError"
    mounts = {m["name"]: m["mountPath"] for m in fetch["volumeMounts"]}
    assert mounts["model"] == "/var/lib/sluice/model"
    assert {"name": "model", "emptyDir": {}} in pod["volumes"]


def test_runtime_is_configured_through_sluice_variables() -> None:
    resource = isvc(
        {
            "spec": {
                "model": {**model("1"), "digest": DIGEST},
                "runtime": {
                    "batching": {"maxBatchSize": 16, "maxDelayMicroseconds": 500},
                    "warmup": {"requests": 4},
                    "device": "cpu",
                },
            }
        }
    )
    (runtime,) = _pod_spec(resource)["containers"]
    env = _env(runtime)
    assert runtime["args"] == ["serve"]
    assert env["SLUICE_MODEL_NAME"] == "iris"
    assert env["SLUICE_MODEL_VERSION"] == "1"
    assert env["SLUICE_MODEL_URI"] == "file:///var/lib/sluice/model/model.onnx"
    assert env["SLUICE_DIGEST"] == DIGEST
    assert env["SLUICE_MAX_BATCH_SIZE"] == "16"
    assert env["SLUICE_MAX_BATCH_DELAY_US"] == "500"
    assert env["SLUICE_WARMUP_REQUESTS"] == "4"
    assert env["SLUICE_DEVICE"] == "cpu"
    assert env["SLUICE_HTTP_PORT"] == "8080"
    assert env["SLUICE_GRPC_PORT"] == "8081"
    assert "SLUICE_SHADOW_URL" not in env


def test_no_digest_variable_when_the_spec_pins_none() -> None:
    (runtime,) = _pod_spec()["containers"]
    assert "SLUICE_DIGEST" not in _env(runtime)
    assert "--digest" not in _pod_spec()["initContainers"][0]["args"]


def test_user_env_reaches_both_containers_but_cannot_override_the_operators() -> None:
    env = [
        {"name": "AWS_REGION", "value": "eu-west-1"},
        {"name": "SLUICE_MODEL_URI", "value": "s3://elsewhere"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
    ]
    pod = _pod_spec(isvc({"spec": {"runtime": {"env": env}}}))
    runtime_env = _env(pod["containers"][0])
    assert runtime_env["AWS_REGION"] == "eu-west-1"
    assert runtime_env["TOKEN"] == {"secretKeyRef": {"name": "s", "key": "k"}}
    assert runtime_env["SLUICE_MODEL_URI"] == "file:///var/lib/sluice/model/model.onnx"
    names = [e["name"] for e in pod["containers"][0]["env"]]
    assert names.count("SLUICE_MODEL_URI") == 1
    assert _env(pod["initContainers"][0])["AWS_REGION"] == "eu-west-1"


def test_ports_and_probes_follow_the_runtime_contract() -> None:
    (runtime,) = _pod_spec()["containers"]
    assert runtime["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "grpc", "containerPort": 8081, "protocol": "TCP"},
    ]
    assert runtime["startupProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    startup = runtime["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
    assert runtime["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert runtime["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"


def test_revision_service_exposes_http_and_grpc_with_app_protocol() -> None:
    result = build(with_canary("2", 10))
    service = find(result.objects, "Service", result.revisions[0].name)
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert ports["http"]["targetPort"] == "http"
    assert ports["http"]["port"] == 8080
    assert ports["grpc"]["appProtocol"] == "grpc"
    assert ports["grpc"]["targetPort"] == "grpc"
    assert service["spec"]["type"] == "ClusterIP"


def _services(resource: Any) -> set[str]:
    return {o["metadata"]["name"] for o in build(resource).objects if o["kind"] == "Service"}


def test_a_revision_has_its_own_service_only_while_the_router_or_a_shadow_sends_to_it() -> None:
    plain = build(isvc())
    assert _services(isvc()) == {"iris"}  # the entry Service selects the revision's pods
    stable, canary = build(with_canary("2", 10)).revisions
    assert _services(with_canary("2", 10)) == {"iris", stable.name, canary.name}
    # A canary taking nothing still has its Service: router pods that still run the
    # previous split may send to it until they are replaced.
    assert _services(with_canary("2", 0, traffic={"stickyHeader": "x-user"})) >= {canary.name}
    with_shadow = isvc({"spec": {"shadow": {"model": model("3")}}})
    serving, shadow = build(with_shadow).revisions
    assert _services(with_shadow) == {"iris", shadow.name}
    assert plain.revisions[0].name == serving.name


def test_pods_run_locked_down() -> None:
    pod = _pod_spec()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for container in [*pod["initContainers"], *pod["containers"]]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
    writable = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert "/tmp" in writable


def test_grace_period_outlasts_the_runtime_drain() -> None:
    pod = _pod_spec()
    drain = int(_env(pod["containers"][0])["SLUICE_DRAIN_SECONDS"])
    assert pod["terminationGracePeriodSeconds"] > drain


def test_prometheus_scrape_annotations() -> None:
    template = find(build(isvc()).objects, "Deployment")["spec"]["template"]
    assert template["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8080",
        "prometheus.io/path": "/metrics",
    }


def test_gpu_limit_selects_gpu_nodes_and_tolerates_their_taint() -> None:
    resource = isvc({"spec": {"runtime": {"resources": {"limits": {"nvidia.com/gpu": 1}}}}})
    pod = _pod_spec(resource)
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]
    assert "nvidia.com/gpu" not in pod["initContainers"][0]["resources"].get("limits", {})


def test_cpu_pods_get_no_gpu_scheduling() -> None:
    pod = _pod_spec()
    assert "nodeSelector" not in pod
    assert "tolerations" not in pod


def test_gpu_request_alone_gets_the_matching_limit() -> None:
    resource = isvc({"spec": {"runtime": {"resources": {"requests": {"nvidia.com/gpu": 2}}}}})
    limits = _pod_spec(resource)["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "2"


def test_pass_throughs_reach_the_pod() -> None:
    pod_patch = {
        "nodeSelector": {"pool": "inference"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml"}],
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
        "serviceAccountName": "model-reader",
        "imagePullSecrets": [{"name": "regcred"}],
        "annotations": {"team": "risk"},
        "labels": {"cost-center": "42"},
    }
    resource = isvc({"spec": {"pod": pod_patch}})
    template = find(build(resource).objects, "Deployment")["spec"]["template"]
    pod = template["spec"]
    assert pod["nodeSelector"] == {"pool": "inference"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "ml"}]
    assert pod["affinity"] == pod_patch["affinity"]
    assert pod["serviceAccountName"] == "model-reader"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert template["metadata"]["annotations"]["team"] == "risk"
    assert template["metadata"]["labels"]["cost-center"] == "42"


def test_runtime_image_override_and_default() -> None:
    assert _pod_spec()["containers"][0]["image"].startswith("ghcr.io/sluice-dev/sluice-runtime:")
    custom = isvc(
        {"spec": {"runtime": {"image": "registry.local/rt:1", "imagePullPolicy": "Always"}}}
    )
    for container in [*_pod_spec(custom)["initContainers"], *_pod_spec(custom)["containers"]]:
        assert container["image"] == "registry.local/rt:1"
        assert container["imagePullPolicy"] == "Always"


def test_role_label_never_in_pod_template_or_selector() -> None:
    for obj in build(with_canary("2", 10)).objects:
        if obj["kind"] != "Deployment" or LABEL_REVISION not in obj["metadata"]["labels"]:
            continue
        assert LABEL_ROLE in obj["metadata"]["labels"]
        assert LABEL_ROLE not in obj["spec"]["template"]["metadata"]["labels"]
        assert LABEL_ROLE not in obj["spec"]["selector"]["matchLabels"]
        assert obj["spec"]["selector"]["matchLabels"] == {
            LABEL_ISVC: "iris",
            LABEL_REVISION: obj["metadata"]["name"],
        }
        assert obj["metadata"]["labels"][LABEL_MODEL_VERSION] in ("1", "2")


def test_promotion_keeps_the_canary_pod_template_exactly() -> None:
    before = build(with_canary("2", 10))
    after = build(isvc({"spec": {"model": model("2")}}))
    canary = before.revisions[1].name
    old = find(before.objects, "Deployment", canary)
    new = find(after.objects, "Deployment", canary)
    assert old["spec"]["template"] == new["spec"]["template"]
    assert (old["metadata"]["labels"][LABEL_ROLE], new["metadata"]["labels"][LABEL_ROLE]) == (
        "canary",
        "stable",
    )


def test_fixed_replicas_without_autoscaling() -> None:
    objects = build(isvc({"spec": {"scaling": {"minReplicas": 3}}})).objects
    assert find(objects, "Deployment")["spec"]["replicas"] == 3
    assert not [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]


def test_autoscaling_leaves_replicas_to_the_hpa() -> None:
    scaling = {"minReplicas": 2, "maxReplicas": 6, "targetCPUUtilizationPercentage": 65}
    objects = build(isvc({"spec": {"scaling": scaling}})).objects
    deployment = find(objects, "Deployment")
    assert "replicas" not in deployment["spec"]
    hpa = find(objects, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    target = hpa["spec"]["metrics"][0]["resource"]["target"]
    assert target == {"type": "Utilization", "averageUtilization": 65}


def test_pdb_only_from_two_replicas() -> None:
    assert not [o for o in build(isvc()).objects if o["kind"] == "PodDisruptionBudget"]
    objects = build(isvc({"spec": {"scaling": {"minReplicas": 2}}})).objects
    pdb = find(objects, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    deployment = find(objects, "Deployment")
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]


def test_every_child_is_owned_and_stamped() -> None:
    for obj in build(with_canary("2", 10, shadow={"model": model("3")})).objects:
        meta = obj["metadata"]
        assert meta["namespace"] == "risk"
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "serving.sluice.dev/v1alpha1",
                "kind": "InferenceService",
                "name": "iris",
                "uid": UID,
                "controller": True,
            }
        ]
        assert len(meta["annotations"][ANNOTATION_APPLIED_HASH]) == 64
        assert meta["labels"][LABEL_ISVC] == "iris"


def test_serving_revisions_mirror_to_the_shadow_service() -> None:
    resource = with_canary("2", 10, shadow={"model": model("3"), "mirrorPercent": 30})
    result = build(resource)
    stable, canary, shadow = result.revisions
    url = f"http://{shadow.name}.risk.svc.cluster.local:8080"
    for revision in (stable, canary):
        env = _env(
            find(result.objects, "Deployment", revision.name)["spec"]["template"]["spec"][
                "containers"
            ][0]
        )
        assert (env["SLUICE_SHADOW_URL"], env["SLUICE_SHADOW_PERCENT"]) == (url, "30")
    shadow_env = _env(
        find(result.objects, "Deployment", shadow.name)["spec"]["template"]["spec"]["containers"][0]
    )
    assert "SLUICE_SHADOW_URL" not in shadow_env


def test_a_shadow_alone_adds_no_router() -> None:
    result = build(isvc({"spec": {"shadow": {"model": model("3")}}}))
    assert result.entry == result.revisions[0].name
    assert not [o for o in result.objects if o["kind"] == "ConfigMap"]
    entry = find(result.objects, "Service", "iris")
    assert entry["spec"]["selector"] == {
        LABEL_ISVC: "iris",
        LABEL_REVISION: result.revisions[0].name,
    }


def test_inference_threads_follow_the_cpu_share() -> None:
    def threads(resources: dict[str, Any], env: list[dict[str, str]] | None = None) -> Any:
        patch = {"spec": {"runtime": {"resources": resources, "env": env or []}}}
        return _env(_pod_spec(isvc(patch))["containers"][0]).get("SLUICE_INTRA_OP_THREADS")

    assert threads({"limits": {"cpu": "2"}, "requests": {"cpu": "500m"}}) == "2"
    assert threads({"requests": {"cpu": "1500m"}}) == "2"
    assert threads({"requests": {"cpu": "250m"}}) == "1"
    assert threads({"requests": {"cpu": None, "memory": "1Gi"}}) is None
    user = [{"name": "SLUICE_INTRA_OP_THREADS", "value": "8"}]
    assert threads({"limits": {"cpu": "2"}}, user) == "8"
