"""Status recomputed from live objects on every pass, never remembered.

Conditions (metav1.Condition shape; lastTransitionTime changes only when a status flips):
- ModelsReady: every revision the spec names has all its replicas available on its current
  pod template.
- TrafficReady: callers get exactly the spec's shares, through the router when one is needed.
- Degraded: some pod of a revision the spec names is failing now (all pods are counted).
- Ready: ModelsReady and TrafficReady and not Degraded; when false, the reason says why.
- Progressing: work is under way (revisions starting, traffic moving, revisions draining).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sluice_operator import health, spec
from sluice_operator.desired import Desired
from sluice_operator.live import (
    LiveState,
    available,
    desired_replicas,
    labels_of,
    ready_replicas,
    rolled_out,
    router_serving_config,
)
from sluice_operator.naming import (
    LABEL_MODEL_VERSION,
    Manifest,
    isvc_name,
    isvc_namespace,
    router_name,
    service_host,
)
from sluice_operator.revisions import Revision
from sluice_operator.settings import Settings

CONDITION_TYPES = ("Ready", "ModelsReady", "TrafficReady", "Progressing", "Degraded")


@dataclass(frozen=True)
class Observation:
    """Everything status is computed from."""

    isvc: spec.InferenceService
    desired: Desired
    live: LiveState
    converged: bool
    """The last pass had nothing left to write."""
    now: datetime
    previous: spec.InferenceServiceStatus | None = None


def compute(obs: Observation, settings: Settings) -> spec.InferenceServiceStatus:
    """The status to write for this observation."""
    revisions = _revision_entries(obs)
    by_role = {r.role: r for r in revisions if r.role != "draining"}
    conditions = _conditions(obs, revisions)
    previous = obs.previous.conditions if obs.previous else []
    host = service_host(isvc_name(obs.isvc), isvc_namespace(obs.isvc), settings.cluster_domain)
    return spec.InferenceServiceStatus(
        observed_generation=obs.isvc.metadata.generation,
        url=f"http://{host}",
        stable=by_role["stable"].column() if "stable" in by_role else None,
        canary=by_role["canary"].column() if "canary" in by_role else None,
        shadow=by_role["shadow"].column() if "shadow" in by_role else None,
        revisions=revisions,
        conditions=_keep_transition_times(conditions, previous),
    )


def invalid_spec(
    generation: int | None,
    previous: spec.InferenceServiceStatus | None,
    message: str,
    now: datetime,
) -> spec.InferenceServiceStatus:
    """A spec the operator cannot build from (stored before a validation rule existed): say
    so in Ready and leave every child as it is."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions = [
        spec.Condition(
            type=kind,
            status="False" if kind != "Degraded" else "True",
            observed_generation=generation,
            last_transition_time=stamp,
            reason="InvalidSpec",
            message=message[:32768],
        )
        for kind in ("Ready", "Degraded")
    ]
    base = previous or spec.InferenceServiceStatus()
    return base.model_copy(
        update={
            "observed_generation": generation,
            "conditions": _keep_transition_times(conditions, base.conditions),
        }
    )


def _revision_entries(obs: Observation) -> list[spec.RevisionStatus]:
    deployments = obs.live.revision_deployments()
    applied = obs.desired.applied
    scaling = obs.isvc.spec.scaling
    entries = []
    for revision in obs.desired.revisions:
        deployment = deployments.get(revision.name)
        entries.append(
            spec.RevisionStatus(
                name=revision.name,
                role=revision.role,
                version=revision.model.version,
                digest=revision.model.digest,
                ready_replicas=ready_replicas(deployment) if deployment else 0,
                replicas=(
                    desired_replicas(deployment, obs.live.replica_floor(revision.name))
                    if deployment
                    else scaling.min_replicas
                ),
                traffic_percent=applied.percent(revision.name),
                mirror_percent=revision.mirror_percent,
            )
        )
    named = {r.name for r in obs.desired.revisions}
    for name, deployment in sorted(deployments.items()):
        if name not in named:
            entries.append(
                spec.RevisionStatus(
                    name=name,
                    role="draining",
                    version=labels_of(deployment).get(LABEL_MODEL_VERSION, "unknown"),
                    digest=_digest(deployment),
                    ready_replicas=ready_replicas(deployment),
                    replicas=desired_replicas(deployment),
                    traffic_percent=applied.percent(name),
                )
            )
    return entries


def _digest(deployment: Manifest) -> str | None:
    template = deployment.get("spec", {}).get("template", {})
    for container in template.get("spec", {}).get("containers") or []:
        for env in container.get("env") or []:
            if env.get("name") == "SLUICE_DIGEST":
                return str(env.get("value"))
    return None


def _describe(revision: Revision) -> str:
    return f"{revision.name} ({revision.role}, version {revision.model.version})"


def _condition(kind: str, ok: bool, reason: str, message: str, obs: Observation) -> spec.Condition:
    return spec.Condition(
        type=kind,
        status="True" if ok else "False",
        observed_generation=obs.isvc.metadata.generation,
        last_transition_time=obs.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        reason=reason,
        message=message,
    )


def _models_ready(obs: Observation, failure: tuple[str, str] | None) -> spec.Condition:
    deployments = obs.live.revision_deployments()
    waiting = []
    for revision in obs.desired.revisions:
        deployment = deployments.get(revision.name)
        if deployment is None:
            waiting.append(f"{_describe(revision)}: not created yet")
        elif not rolled_out(deployment, obs.live.replica_floor(revision.name)):
            floor = obs.live.replica_floor(revision.name)
            ready, want = ready_replicas(deployment), desired_replicas(deployment, floor)
            waiting.append(f"{_describe(revision)}: {ready}/{want} ready")
    if failure is not None:
        return _condition("ModelsReady", False, failure[0], failure[1], obs)
    if waiting:
        return _condition("ModelsReady", False, "RevisionsStarting", "; ".join(waiting), obs)
    count = len(obs.desired.revisions)
    return _condition("ModelsReady", True, "RevisionsAvailable", f"{count} revision(s)", obs)


def _shares(obs: Observation) -> str:
    applied = obs.desired.applied
    way = "via the router" if obs.desired.entry is None else "direct to the revision"
    split = ", ".join(f"{name} {weight}%" for name, weight in applied.weights if weight)
    return f"{split} ({way})"


def _traffic_ready(obs: Observation) -> spec.Condition:
    desired = obs.desired
    name = isvc_name(obs.isvc)
    if desired.traffic != desired.wanted:
        waiting = [
            _describe(r)
            for r in desired.revisions
            if r.name in desired.wanted.targets
            and not available(
                obs.live.revision_deployments().get(r.name, {}), obs.live.replica_floor(r.name)
            )
        ]
        message = f"held at {_shares(obs)} until available: {', '.join(waiting)}"
        return _condition("TrafficReady", False, "WaitingForRevisions", message, obs)
    if desired.wanted.via_router:
        router = obs.live.router_deployment()
        config_map = obs.live.get("ConfigMap", router_name(name))
        if desired.entry is not None or router is None:
            message = f"router starting; callers still go {_shares(obs)}"
            return _condition("TrafficReady", False, "RouterStarting", message, obs)
        if not router_serving_config(router, config_map):
            return _condition(
                "TrafficReady", False, "RouterRollingOut", "router pods load the new split", obs
            )
    if not obs.converged:
        return _condition("TrafficReady", False, "Applying", "objects are being written", obs)
    return _condition("TrafficReady", True, "TrafficRouted", _shares(obs), obs)


def _conditions(obs: Observation, revisions: list[spec.RevisionStatus]) -> list[spec.Condition]:
    described = {r.name: _describe(r) for r in obs.desired.revisions}
    failing = health.problems(obs.live.pods, described)
    failure = health.summarize(failing, described)
    models = _models_ready(obs, failure)
    traffic = _traffic_ready(obs)
    degraded = (
        _condition("Degraded", True, failure[0], failure[1], obs)
        if failure
        else _condition("Degraded", False, "NoFailures", "no pod is failing", obs)
    )
    if failure is not None:
        ready = _condition("Ready", False, failure[0], failure[1], obs)
    elif models.status != "True":
        ready = _condition("Ready", False, models.reason, models.message, obs)
    elif traffic.status != "True":
        ready = _condition("Ready", False, traffic.reason, traffic.message, obs)
    else:
        ready = _condition("Ready", True, "Serving", _shares(obs), obs)
    ready_ok = ready.status == "True"
    draining = [r.name for r in revisions if r.role == "draining"]
    if failure is not None:
        progressing = _condition("Progressing", False, "Stalled", failure[1], obs)
    elif not ready_ok:
        progressing = _condition("Progressing", True, "RollingOut", ready.message, obs)
    elif draining:
        message = f"waiting for traffic to leave: {', '.join(draining)}"
        progressing = _condition("Progressing", True, "Draining", message, obs)
    else:
        progressing = _condition("Progressing", False, "Complete", "rollout complete", obs)
    return [ready, models, traffic, progressing, degraded]


def _keep_transition_times(
    conditions: list[spec.Condition], previous: list[spec.Condition]
) -> list[spec.Condition]:
    before = {c.type: c for c in previous}
    kept = []
    for condition in conditions:
        old = before.get(condition.type)
        if old is not None and old.status == condition.status:
            condition = condition.model_copy(
                update={"last_transition_time": old.last_transition_time}
            )
        kept.append(condition)
    return kept
