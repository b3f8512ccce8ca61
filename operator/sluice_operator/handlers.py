"""kopf wiring: one reconcile loop (a daemon) per InferenceService, woken by watch events.

Why a daemon rather than create/update handlers: reconciliation here is level-based (every
pass reads everything), so one serial loop per object is all that is needed: it runs on
creation and on operator start (kopf's resume), then whenever the InferenceService's
generation changes or one of its children or pods changes (the informers' watches, started
with the operator, say so), and at least every resync period. Bursts of events collapse into
one pass. kopf watches only InferenceServices; its event handler keeps their latest version in
the store the reconciliation reads. kopf stops the daemon when the object is
deleted or when peering pauses this operator. And with no change-detecting handlers, kopf
keeps no last-handled-configuration annotation on the object (its 262 KB limit, kopf#1087,
never applies); the only thing kopf adds is the finalizer that lets it stop the daemon.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from sluice_operator import spec
from sluice_operator.informers import Informers
from sluice_operator.reconcile import Reconciler
from sluice_operator.store import Key, Store

log = logging.getLogger(__name__)
RETRY_SECONDS = 1.0
RECONCILE_THREADS = 32
"""Reconciliations that may run at once. A pass mostly waits on the API server (a handful of
requests), so asyncio's default pool (cores + 4 threads: 6 on two cores) left a thousand
InferenceServices queued behind six round trips (bench/operator_scale.py). The gateway's
connection pool has as many connections (gateway.CONNECTIONS)."""
MAX_BACKOFF_SECONDS = 60.0


class Wakeups:
    """One asyncio.Event per running reconcile loop; watch handlers set it."""

    def __init__(self) -> None:
        self._events: dict[Key, asyncio.Event] = {}
        self._generations: dict[Key, int | None] = {}

    def register(self, key: Key) -> asyncio.Event:
        """Called by the loop of `key` when it starts."""
        return self._events.setdefault(key, asyncio.Event())

    def unregister(self, key: Key) -> None:
        """Called by the loop of `key` when it ends."""
        self._events.pop(key, None)
        self._generations.pop(key, None)

    def forget(self, key: Key) -> None:
        """The object is gone: drop the generation remembered for it."""
        self._generations.pop(key, None)

    def poke(self, key: Key) -> None:
        """Wake the loop of `key`, if one runs (a loop about to start runs a pass anyway)."""
        event = self._events.get(key)
        if event is not None:
            event.set()

    def spec_changed(self, key: Key, generation: int | None) -> bool:
        """True when `generation` differs from the last one seen (status writes do not count)."""
        changed = self._generations.get(key) != generation
        self._generations[key] = generation
        return changed


async def _sleep_or_wake(wake: asyncio.Event, stopped: kopf.DaemonStopped, seconds: float) -> None:
    """Until a poke, kopf's stop signal (deletion, peering pause, exit), or `seconds`."""
    waiters = {
        asyncio.ensure_future(wake.wait()),
        asyncio.ensure_future(stopped.wait()),
    }
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def build_registry(
    reconciler: Reconciler,
    wakeups: Wakeups,
    resync_seconds: float,
    isvcs: Store,
    informers: Informers,
) -> kopf.OperatorRegistry:
    """A registry holding the loop and the watches (nothing registers at import time)."""
    registry = kopf.OperatorRegistry()
    resource = (spec.API_GROUP, spec.API_VERSION, spec.PLURAL)
    executor = ThreadPoolExecutor(RECONCILE_THREADS, thread_name_prefix="reconcile")

    @kopf.on.startup(registry=registry)
    async def watch_children(**_: Any) -> None:
        loop = asyncio.get_running_loop()

        def changed(key: Key) -> None:
            loop.call_soon_threadsafe(wakeups.poke, key)

        informers.start(changed)

    @kopf.on.cleanup(registry=registry)
    async def stop_watching(**_: Any) -> None:
        await asyncio.to_thread(informers.stop)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # A hand-made registry has none of kopf's default logins: the in-cluster service
        # account, else KUBECONFIG, read through the kubernetes client as the gateway does.
        return kopf.login_via_client(**kwargs)

    @kopf.daemon(
        *resource,
        id="reconcile",
        cancellation_backoff=10.0,
        cancellation_timeout=10.0,
        registry=registry,
    )
    async def reconcile_loop(
        namespace: str | None, name: str, stopped: kopf.DaemonStopped, **_: Any
    ) -> None:
        key = (namespace or "", name)
        wake = wakeups.register(key)
        loop = asyncio.get_running_loop()
        failures = 0
        try:
            while not stopped:
                wake.clear()
                try:
                    outcome = await loop.run_in_executor(executor, reconciler.reconcile, *key)
                    failures = 0
                    delay = resync_seconds if outcome.settled else RETRY_SECONDS
                except Exception:
                    failures += 1
                    delay = min(RETRY_SECONDS * 2**failures, MAX_BACKOFF_SECONDS)
                    log.exception("%s/%s: reconciliation failed; again in %.0fs", *key, delay)
                await _sleep_or_wake(wake, stopped, delay)
        finally:
            wakeups.unregister(key)

    @kopf.on.event(*resource, registry=registry)
    async def spec_event(
        event: kopf.RawEvent, namespace: str | None, name: str, meta: kopf.Meta, **_: Any
    ) -> None:
        key = (namespace or "", name)
        # kopf's first listing comes as events without a type: they are objects seen.
        isvcs.observe(event["type"] or "ADDED", dict(event["object"]))
        if event["type"] == "DELETED":
            wakeups.forget(key)
        elif wakeups.spec_changed(key, meta.get("generation")):
            wakeups.poke(key)

    return registry
