"""What a reconciliation reads and writes: reads come from memory, writes go through the
gateway and into memory.

Reads never call the API server: the InferenceServices come from kopf's watch (handlers.py
feeds them in), children and pods from the informers' watches. Every write's answer (the object
as the API server stored it) is put into the store at once, so the pass right after a write
sees it even before the watch delivers it, and does not write it again.
"""

from __future__ import annotations

import logging

from sluice_operator import spec
from sluice_operator.events import Event
from sluice_operator.gateway import Gateway
from sluice_operator.informers import Informers
from sluice_operator.live import LiveState
from sluice_operator.naming import Manifest
from sluice_operator.plan import ObjectRef
from sluice_operator.store import Store

log = logging.getLogger(__name__)
SYNC_TIMEOUT_SECONDS = 60.0
"""How long a reconciliation waits for the first listing of every watched kind."""


class Cluster:
    """The cluster as one reconciliation sees it."""

    def __init__(
        self, gateway: Gateway, isvcs: Store, children: Store, informers: Informers
    ) -> None:
        self._gateway = gateway
        self._isvcs = isvcs
        self._children = children
        self._informers = informers

    def get_isvc(self, namespace: str, name: str) -> Manifest | None:
        """The InferenceService as last seen; asked of the API server only when kopf's watch
        has not delivered it (then the answer is not kept: a deletion may be on its way)."""
        held = self._isvcs.get(spec.KIND, namespace, name)
        if held is not None:
            return held
        log.debug("%s/%s: not seen on the watch; asking the API server", namespace, name)
        return self._gateway.get_isvc(namespace, name)

    def read_children(self, namespace: str, isvc: str) -> LiveState:
        """Its children and pods, once every watched kind has been listed."""
        self._informers.wait_synced(SYNC_TIMEOUT_SECONDS)
        return self._children.live(namespace, isvc)

    def apply(self, obj: Manifest) -> None:
        self._children.written(self._gateway.apply(obj))

    def drain(self, ref: ObjectRef) -> None:
        self._children.written(self._gateway.drain(ref))

    def delete(self, ref: ObjectRef) -> None:
        self._gateway.delete(ref)
        self._children.deleted(ref.kind, ref.namespace, ref.name)

    def apply_status(self, namespace: str, name: str, status: Manifest) -> None:
        self._isvcs.written(self._gateway.apply_status(namespace, name, status))

    def post_event(self, isvc: Manifest, event: Event) -> None:
        self._gateway.post_event(isvc, event)
