"""The one module that talks to the Kubernetes API: lists and watches (for the informers), single
reads, server-side applies, deletes, events.

Every write uses the field manager `sluice-operator`. Applies force: the operator owns its
children outright, so a field another manager took (a `kubectl edit`) is taken back. The HPA's
replica count stays the HPA's because the operator never sends `replicas` for an autoscaled
Deployment. Transient answers (409 conflicts, 429, 5xx, dropped connections) are retried with
backoff; anything else is raised to the caller, which retries the whole pass later.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from sluice_operator import spec
from sluice_operator.events import Event
from sluice_operator.naming import FIELD_MANAGER, LABEL_ROLE, Manifest
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
LIST_PAGE = 500
CONNECTIONS = 32
"""Kept-alive connections to the API server: one per reconcile thread (handlers.py), where
the client's default (five per core) would make threads wait for a connection."""

RBAC_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # (apiGroup, resource, verbs) this module uses; kopf adds its own watches and patches.
    # Children and pods are listed and watched (informers.py), never listed per reconciliation.
    (spec.API_GROUP, spec.PLURAL, ("get",)),
    (spec.API_GROUP, f"{spec.PLURAL}/status", ("patch",)),
    ("apps", "deployments", ("list", "watch", "patch", "delete")),
    ("", "services", ("list", "watch", "patch", "delete")),
    ("", "configmaps", ("list", "watch", "patch", "delete")),
    ("autoscaling", "horizontalpodautoscalers", ("list", "watch", "patch", "delete")),
    ("policy", "poddisruptionbudgets", ("list", "watch", "patch", "delete")),
    ("", "pods", ("list", "watch")),
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


def collection_path(api_version: str, kind: str, namespace: str | None) -> str:
    """/api/v1/namespaces/NS/PLURAL or /apis/GROUP/VERSION/namespaces/NS/PLURAL; without a
    namespace, the collection across all of them."""
    prefix = "/api" if "/" not in api_version else "/apis"
    scope = "" if namespace is None else f"/namespaces/{namespace}"
    return f"{prefix}/{api_version}{scope}/{PLURALS[kind]}"


class Expired(Exception):
    """The resource version a watch started from is gone (410): list afresh."""


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

    def list_objects(
        self, api_version: str, kind: str, namespace: str | None, selector: str
    ) -> tuple[list[Manifest], str]:
        """Every object of `kind` matching the label `selector` (in pages, so a listing of
        thousands of pods is never one huge answer), and the resourceVersion to watch from."""
        path = collection_path(api_version, kind, namespace)
        items: list[Manifest] = []
        token = ""
        while True:
            query = [("labelSelector", selector), ("limit", str(LIST_PAGE))]
            if token:
                query.append(("continue", token))
            page = self._call("GET", path, query=query)
            for item in page.get("items", []):
                items.append({"apiVersion": api_version, "kind": kind, **item})
            meta = page.get("metadata", {})
            token = meta.get("continue") or ""
            if not token:
                return items, str(meta.get("resourceVersion", ""))

    def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        selector: str,
        resource_version: str,
        seconds: int,
    ) -> WatchStream:
        """Changes after `resource_version`, for `seconds` (the API server then ends the
        stream); bookmarks keep the version fresh in quiet times. Raises Expired on 410."""
        query = [
            ("watch", "true"),
            ("labelSelector", selector),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(seconds)),
        ]
        try:
            response = self._api.call_api(
                collection_path(api_version, kind, namespace),
                "GET",
                query_params=query,
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
                response_types_map={},
                _return_http_data_only=True,
                _preload_content=False,
                _request_timeout=(REQUEST_TIMEOUT_SECONDS, seconds + REQUEST_TIMEOUT_SECONDS),
            )
        except ApiException as error:
            if error.status == 410:
                raise Expired(f"{kind}: {error.reason}") from error
            raise
        return WatchStream(response)

    def apply(self, obj: Manifest) -> Manifest:
        """Server-side apply, forced: the operator owns what it sends."""
        ref = ObjectRef.of(obj)
        path = f"{collection_path(ref.api_version, ref.kind, ref.namespace)}/{ref.name}"
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        return self._call(
            "PATCH", path, query=query, body=obj, content="application/apply-patch+yaml"
        )

    def drain(self, ref: ObjectRef) -> Manifest:
        """Set the role label to `draining` with a merge patch (an apply would drop the spec)."""
        path = f"{collection_path(ref.api_version, ref.kind, ref.namespace)}/{ref.name}"
        body = {"metadata": {"labels": {LABEL_ROLE: "draining"}}}
        query = [("fieldManager", FIELD_MANAGER)]
        return self._call(
            "PATCH", path, query=query, body=body, content="application/merge-patch+json"
        )

    def delete(self, ref: ObjectRef) -> None:
        """Delete in the background (the garbage collector removes pods); gone is fine."""
        path = f"{collection_path(ref.api_version, ref.kind, ref.namespace)}/{ref.name}"
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        try:
            self._call("DELETE", path, body=body)
        except ApiException as error:
            if error.status != 404:
                raise

    def apply_status(self, namespace: str, name: str, status: Manifest) -> Manifest:
        """Server-side apply of the status subresource; the InferenceService as stored."""
        path = f"{collection_path(ISVC_API_VERSION, spec.KIND, namespace)}/{name}/status"
        body = {
            "apiVersion": ISVC_API_VERSION,
            "kind": spec.KIND,
            "metadata": {"name": name, "namespace": namespace},
            "status": status,
        }
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        return self._call(
            "PATCH", path, query=query, body=body, content="application/apply-patch+yaml"
        )

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


class WatchStream:
    """One watch request: iterate for (type, object) events; `close` from another thread ends
    the iteration (the operator stopping)."""

    def __init__(self, response: urllib3.HTTPResponse) -> None:
        self._response = response

    def __iter__(self) -> Iterator[tuple[str, Manifest]]:
        try:
            for line in iter_resp_lines(self._response):
                if not line:
                    continue
                event = json.loads(line)
                kind, obj = event["type"], event["object"]
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Expired(str(obj.get("message")))
                    raise WatchFailed(f"{obj.get('code')} {obj.get('message')}")
                yield kind, obj
        finally:
            self._response.release_conn()

    def close(self) -> None:
        """Shut the socket for reading: a read blocked in another thread returns at once
        (closing the response instead would wait for that read to finish)."""
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            self._response.shutdown()


class WatchFailed(Exception):
    """The API server ended a watch with an error other than 410."""


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
