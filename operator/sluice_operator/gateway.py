"""The one module that talks to the Kubernetes API (reads, server-side apply, deletes, events).

Every write uses the field manager `sluice-operator`. Applies force: the operator owns its
children outright, so a field another manager took (a `kubectl edit`) is taken back. The HPA's
replica count stays the HPA's because the operator never sends `replicas` for an autoscaled
Deployment. Transient answers (409 conflicts, 429, 5xx, dropped connections) are retried with
backoff; anything else is raised to the caller, which retries the whole pass later.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from sluice_operator import spec
from sluice_operator.events import Event
from sluice_operator.live import CHILD_KINDS, LiveState
from sluice_operator.naming import FIELD_MANAGER, LABEL_ISVC, LABEL_ROLE, Manifest
from sluice_operator.plan import ObjectRef

log = logging.getLogger(__name__)
T = TypeVar("T")

PLURALS = {
    "Deployment": "deployments",
    "Service": "services",
    "ConfigMap": "configmaps",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "Pod": "pods",
    "Event": "events",
    spec.KIND: spec.PLURAL,
}
RETRIED_STATUS = frozenset({409, 429, 500, 502, 503, 504})
BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0, 4.0)
REQUEST_TIMEOUT_SECONDS = 30
ISVC_API_VERSION = f"{spec.API_GROUP}/{spec.API_VERSION}"
CONNECTIONS = 32
"""Kept-alive connections to the API server: one per reconcile thread (handlers.py), where
the client's default (five per core) would make threads wait for a connection."""

RBAC_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # (apiGroup, resource, verbs) this module uses; kopf adds its own watches and patches.
    (spec.API_GROUP, spec.PLURAL, ("get",)),
    (spec.API_GROUP, f"{spec.PLURAL}/status", ("patch",)),
    ("apps", "deployments", ("list", "patch", "delete")),
    ("", "services", ("list", "patch", "delete")),
    ("", "configmaps", ("list", "patch", "delete")),
    ("autoscaling", "horizontalpodautoscalers", ("list", "patch", "delete")),
    ("policy", "poddisruptionbudgets", ("list", "patch", "delete")),
    ("", "pods", ("list",)),
    ("", "events", ("create",)),
)


def load_api_client() -> client.ApiClient:
    """The in-cluster service account, else KUBECONFIG (or ~/.kube/config): kopf's order."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = CONNECTIONS
    return client.ApiClient(configuration)


def collection_path(api_version: str, kind: str, namespace: str) -> str:
    """/api/v1/namespaces/NS/PLURAL or /apis/GROUP/VERSION/namespaces/NS/PLURAL."""
    prefix = "/api" if "/" not in api_version else "/apis"
    return f"{prefix}/{api_version}/namespaces/{namespace}/{PLURALS[kind]}"


class Gateway:
    """Synchronous calls (the kubernetes client is synchronous); handlers run them in threads."""

    def __init__(self, api: client.ApiClient, instance: str | None = None) -> None:
        self._api = api
        self._instance = instance or socket.gethostname()

    def get_isvc(self, namespace: str, name: str) -> Manifest | None:
        """The InferenceService as stored, or None when it is gone."""
        path = f"{collection_path(ISVC_API_VERSION, spec.KIND, namespace)}/{name}"
        try:
            return self._call("GET", path)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def read_children(self, namespace: str, isvc: str) -> LiveState:
        """Every child kind and the pods, listed by the `sluice.dev/isvc` label."""
        query = [("labelSelector", f"{LABEL_ISVC}={isvc}")]
        items: list[Manifest] = []
        for api_version, kind in CHILD_KINDS:
            listed = self._call("GET", collection_path(api_version, kind, namespace), query=query)
            for item in listed.get("items", []):
                items.append({"apiVersion": api_version, "kind": kind, **item})
        pods = self._call("GET", collection_path("v1", "Pod", namespace), query=query)
        return LiveState.of(items, pods.get("items", []))

    def apply(self, obj: Manifest) -> Manifest:
        """Server-side apply, forced: the operator owns what it sends."""
        ref = ObjectRef.of(obj)
        path = f"{collection_path(ref.api_version, ref.kind, ref.namespace)}/{ref.name}"
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        return self._call(
            "PATCH", path, query=query, body=obj, content="application/apply-patch+yaml"
        )

    def drain(self, ref: ObjectRef) -> None:
        """Set the role label to `draining` with a merge patch (an apply would drop the spec)."""
        path = f"{collection_path(ref.api_version, ref.kind, ref.namespace)}/{ref.name}"
        body = {"metadata": {"labels": {LABEL_ROLE: "draining"}}}
        query = [("fieldManager", FIELD_MANAGER)]
        self._call("PATCH", path, query=query, body=body, content="application/merge-patch+json")

    def delete(self, ref: ObjectRef) -> None:
        """Delete in the background (the garbage collector removes pods); gone is fine."""
        path = f"{collection_path(ref.api_version, ref.kind, ref.namespace)}/{ref.name}"
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        try:
            self._call("DELETE", path, body=body)
        except ApiException as error:
            if error.status != 404:
                raise

    def apply_status(self, namespace: str, name: str, status: Manifest) -> None:
        """Server-side apply of the status subresource."""
        path = f"{collection_path(ISVC_API_VERSION, spec.KIND, namespace)}/{name}/status"
        body = {
            "apiVersion": ISVC_API_VERSION,
            "kind": spec.KIND,
            "metadata": {"name": name, "namespace": namespace},
            "status": status,
        }
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        self._call("PATCH", path, query=query, body=body, content="application/apply-patch+yaml")

    def post_event(self, isvc: Manifest, event: Event) -> None:
        """A core/v1 Event about the InferenceService."""
        meta = isvc["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "apiVersion": ISVC_API_VERSION,
                "kind": spec.KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": event.type,
            "reason": event.reason,
            "message": event.message[:1024],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": self._instance,
        }
        self._call("POST", collection_path("v1", "Event", meta["namespace"]), body=body)

    def _call(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content: str = "application/json",
    ) -> Manifest:
        def once() -> Manifest:
            response = self._api.call_api(
                path,
                method,
                query_params=query or [],
                header_params={"Content-Type": content, "Accept": "application/json"},
                body=body,
                auth_settings=["BearerToken"],
                response_types_map={},
                _return_http_data_only=True,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT_SECONDS,
            )
            data = response.data
            return json.loads(data) if data else {}

        return _retrying(once, f"{method} {path}")


def _retrying(call: Callable[[], T], what: str) -> T:
    for delay in BACKOFF_SECONDS:
        try:
            return call()
        except ApiException as error:
            if error.status not in RETRIED_STATUS:
                raise
            log.info("%s: %s %s; retrying in %.1fs", what, error.status, error.reason, delay)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            log.info("%s: %s; retrying in %.1fs", what, error, delay)
        time.sleep(delay)
    return call()
