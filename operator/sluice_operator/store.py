"""The operator's memory of the cluster: the latest known version of every object it reads.

Why: reading an InferenceService's children from the API server takes a LIST per kind, and a
label-selected LIST makes the API server scan every object of that kind in the namespace, so
1,000 InferenceServices cost O(N^2) of its CPU per resync. Watches (informers.py) fill this
store instead, and a reconciliation reads memory.

Two sources write here, and resource versions order them: watch events, and the operator's own
writes (the API server's answer to an apply is the object as stored, kept at once so the next
pass does not read an older copy and write again). A version older than or equal to the one
held is ignored, which also makes the watch echo of our own write a no-op. An object the
operator deleted is held as a tombstone (its uid) until the watch says it is gone, so a late
event for it does not bring it back.

Memory: thousands of objects as Python dicts took about five times their JSON size (a Deployment
27 KB, a pod 9 KB), and pushed the operator past 250 MB at 1,000 InferenceServices. So each is
kept as compact JSON text, without `managedFields` (and pods without their spec), which nothing
here reads, and parsed again when read: a pass reads a few dozen KB (well under a millisecond),
and every reader gets its own copy, so nothing a reader does can change the store.
Pure: no I/O; thread-safe, since watch threads, reconcile threads and the event loop share it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sluice_operator.live import LiveState, labels_of
from sluice_operator.naming import LABEL_ISVC, Manifest

Key = tuple[str, str]
"""(namespace, InferenceService name): whose object it is."""
Ref = tuple[str, str, str]
"""(kind, namespace, name)."""
OwnerOf = Callable[[Manifest], str | None]


def owner_label(obj: Manifest) -> str | None:
    """Children and pods belong to the InferenceService named by their `sluice.dev/isvc` label."""
    return labels_of(obj).get(LABEL_ISVC)


def own_name(obj: Manifest) -> str | None:
    """An InferenceService belongs to itself."""
    name = obj.get("metadata", {}).get("name")
    return str(name) if name else None


def ref_of(obj: Manifest) -> Ref:
    """(kind, namespace, name) of a manifest."""
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def slim(obj: Manifest) -> Manifest:
    """What the reconciler reads: no managedFields; pods only metadata and status."""
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "managedFields"}
    if obj.get("kind") == "Pod":
        return {"apiVersion": obj.get("apiVersion"), "kind": "Pod", "metadata": meta,
                "status": obj.get("status") or {}}  # fmt: skip
    return {**obj, "metadata": meta}


def version_of(obj: Manifest) -> int | None:
    """metadata.resourceVersion as a number (etcd's revision), None when absent or not one."""
    value = obj.get("metadata", {}).get("resourceVersion")
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _uid(obj: Manifest) -> str | None:
    uid = obj.get("metadata", {}).get("uid")
    return str(uid) if uid else None


def _newer(version: int | None, than: int | None) -> bool:
    """Unknown versions count as newer: the latest event wins, as watches deliver in order."""
    return version is None or than is None or version > than


@dataclass(frozen=True)
class _Entry:
    """One object as held: what ordering and indexing need, and its JSON text."""

    uid: str | None
    version: int | None
    owner: Key
    text: str

    def load(self) -> Manifest:
        loaded: Manifest = json.loads(self.text)
        return loaded


class Store:
    """Objects by (kind, namespace, name), indexed by the InferenceService they belong to."""

    def __init__(self, owner_of: OwnerOf) -> None:
        self._owner_of = owner_of
        self._lock = threading.Lock()
        self._entries: dict[Ref, _Entry] = {}
        self._by_owner: dict[Key, set[Ref]] = {}
        self._tombstones: dict[Ref, str | None] = {}

    def observe(self, event_type: str, obj: Manifest) -> Key | None:
        """A watch event; returns whose object changed, None when nothing did."""
        ref = ref_of(obj)
        with self._lock:
            if event_type == "DELETED":
                self._tombstones.pop(ref, None)
                held = self._entries.get(ref)
                if held is None or held.uid != _uid(obj):
                    return None
                return self._drop(ref)
            if ref in self._tombstones and self._tombstones[ref] == _uid(obj):
                return None
            return self._keep(ref, obj)

    def written(self, obj: Manifest) -> None:
        """The API server's answer to a write the operator made (an apply, a patch)."""
        self.observe("MODIFIED", obj)

    def deleted(self, kind: str, namespace: str, name: str) -> None:
        """The operator deleted it: forget it now, and ignore late events for it."""
        ref = (kind, namespace, name)
        with self._lock:
            held = self._entries.get(ref)
            if held is not None:
                self._tombstones[ref] = held.uid
                self._drop(ref)

    def replace(
        self, kind: str, namespaces: Iterable[str] | None, items: list[Manifest]
    ) -> set[Key]:
        """A fresh listing of `kind` (in `namespaces`, or all when None) replaces what is held;
        returns whose objects changed."""
        scope = None if namespaces is None else set(namespaces)

        def in_scope(ref: Ref) -> bool:
            return ref[0] == kind and (scope is None or ref[1] in scope)

        listed = {ref_of(item): item for item in items}
        changed: set[Key] = set()
        with self._lock:
            for ref in [r for r in self._entries if in_scope(r) and r not in listed]:
                changed.add(self._drop(ref))
            for ref in [r for r in self._tombstones if in_scope(r)]:
                del self._tombstones[ref]
            for ref, item in listed.items():
                key = self._keep(ref, item)
                if key is not None:
                    changed.add(key)
        return changed

    def get(self, kind: str, namespace: str, name: str) -> Manifest | None:
        """One object as last seen (a copy of its own), or None."""
        with self._lock:
            held = self._entries.get((kind, namespace, name))
        return held.load() if held is not None else None

    def live(self, namespace: str, isvc: str) -> LiveState:
        """Everything that belongs to one InferenceService: children by kind, and its pods."""
        with self._lock:
            refs = sorted(self._by_owner.get((namespace, isvc), ()))
            owned = [self._entries[ref] for ref in refs]
        objects = [entry.load() for entry in owned]
        return LiveState.of(
            [o for o in objects if o["kind"] != "Pod"], [o for o in objects if o["kind"] == "Pod"]
        )

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _keep(self, ref: Ref, obj: Manifest) -> Key | None:
        held = self._entries.get(ref)
        uid, version = _uid(obj), version_of(obj)
        if held is not None and held.uid == uid and not _newer(version, held.version):
            return None
        name = self._owner_of(obj)
        if name is None:
            return self._drop(ref) if held is not None else None
        key = (ref[1], name)
        if held is not None and held.owner != key:
            self._drop(ref)
        text = json.dumps(slim(obj), separators=(",", ":"))
        self._entries[ref] = _Entry(uid=uid, version=version, owner=key, text=text)
        self._by_owner.setdefault(key, set()).add(ref)
        return key

    def _drop(self, ref: Ref) -> Key:
        key = self._entries.pop(ref).owner
        owned = self._by_owner[key]
        owned.discard(ref)
        if not owned:
            del self._by_owner[key]
        return key
