"""Watches that keep the store current: one list-then-watch loop per child kind and namespace.

Each loop lists its kind (the store replaces what it held), then watches from the listing's
resourceVersion; every event updates the store and, when something changed, wakes the reconcile
loop of the InferenceService it belongs to (`on_change`, called from the watch thread). A stream
the API server ends (timeoutSeconds) is reopened from the last version seen, which bookmarks keep
fresh in quiet times; 410 Gone lists afresh; any other failure lists afresh after a backoff.

Reconciliation waits until every loop has listed once (`wait_synced`): an empty store would read
as "no children", and a pass would write everything again. Threads, because the kubernetes
client is synchronous; one per watch, which is a handful per watched namespace.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

from sluice_operator.gateway import Expired, Gateway, WatchStream
from sluice_operator.live import CHILD_KINDS
from sluice_operator.naming import LABEL_ISVC
from sluice_operator.store import Key, Store

log = logging.getLogger(__name__)
WATCHED_KINDS = (*CHILD_KINDS, ("v1", "Pod"))
WATCH_SECONDS = (240, 480)
"""A random stream length in this range (as client-go does), so streams do not all end at once."""
BACKOFF_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)
Scope = tuple[str, str, str | None]
"""(apiVersion, kind, namespace or None for all namespaces): one list-then-watch loop."""


class NotSynced(Exception):
    """The store has not listed every watched kind yet."""


class Informers:
    """The list-then-watch loops of every watched kind in every watched namespace."""

    def __init__(
        self,
        gateway: Gateway,
        store: Store,
        namespaces: tuple[str, ...] | None,
    ) -> None:
        self._gateway = gateway
        self._store = store
        self._on_change: Callable[[Key], None] = _ignore
        self._scopes: list[Scope] = [
            (api_version, kind, namespace)
            for api_version, kind in WATCHED_KINDS
            for namespace in (namespaces if namespaces is not None else (None,))
        ]
        self._lock = threading.Lock()
        self._unlisted = set(self._scopes)
        self._errors: dict[Scope, str] = {}
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._streams: dict[Scope, WatchStream] = {}
        self._threads: list[threading.Thread] = []

    def start(self, on_change: Callable[[Key], None]) -> None:
        """One daemon thread per scope; `on_change(key)` is called from them."""
        self._on_change = on_change
        for scope in self._scopes:
            name = f"watch-{scope[1]}-{scope[2] or 'all'}"
            thread = threading.Thread(target=self._run, args=(scope,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """End every loop: close the open streams, which unblocks their threads."""
        self._stopping.set()
        with self._lock:
            streams = list(self._streams.values())
        for stream in streams:
            stream.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def wait_synced(self, timeout: float) -> None:
        """Block until every scope has been listed once; NotSynced (naming them) after
        `timeout`, e.g. when RBAC forbids a watch."""
        if self._synced.wait(timeout):
            return
        with self._lock:
            missing = sorted(
                f"{kind} in {ns or 'all namespaces'}" for _, kind, ns in self._unlisted
            )
            errors = "; ".join(self._errors.get(s, "") for s in self._unlisted if s in self._errors)
        raise NotSynced(
            f"not listed yet: {', '.join(missing)}" + (f" ({errors})" if errors else "")
        )

    def _run(self, scope: Scope) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                version = self._list(scope)
                failures = 0
                while not self._stopping.is_set():
                    version = self._watch(scope, version)
            except Expired:
                log.debug("%s in %s: watch expired, listing again", scope[1], scope[2] or "all")
            except Exception as error:
                if self._stopping.is_set():
                    return
                delay = BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS) - 1)]
                failures += 1
                with self._lock:
                    self._errors[scope] = f"{type(error).__name__}: {error}"
                log.warning("%s in %s: %s; listing again in %.1fs", scope[1], scope[2] or "all",
                            error, delay)  # fmt: skip
                self._stopping.wait(delay)

    def _list(self, scope: Scope) -> str:
        api_version, kind, namespace = scope
        items, version = self._gateway.list_objects(api_version, kind, namespace, LABEL_ISVC)
        namespaces = None if namespace is None else (namespace,)
        for key in self._store.replace(kind, namespaces, items):
            self._on_change(key)
        with self._lock:
            self._unlisted.discard(scope)
            self._errors.pop(scope, None)
            if not self._unlisted:
                self._synced.set()
        return version

    def _watch(self, scope: Scope, version: str) -> str:
        """One stream, until the API server ends it; returns the last version seen."""
        api_version, kind, namespace = scope
        seconds = random.randint(*WATCH_SECONDS)
        stream = self._gateway.watch(api_version, kind, namespace, LABEL_ISVC, version, seconds)
        with self._lock:
            self._streams[scope] = stream
        if self._stopping.is_set():
            stream.close()
        try:
            for event_type, obj in stream:
                version = obj.get("metadata", {}).get("resourceVersion") or version
                if event_type == "BOOKMARK":
                    continue
                key = self._store.observe(event_type, obj)
                if key is not None:
                    self._on_change(key)
        finally:
            with self._lock:
                self._streams.pop(scope, None)
        return version


def _ignore(key: Key) -> None:
    """No callback before `start`."""
