"""The store the informers fill: ordering by resourceVersion, tombstones, relists, slimming."""

from __future__ import annotations

from typing import Any

from sluice_operator.store import Store, own_name, owner_label, slim

NS = "risk"


def _obj(
    kind: str, name: str, version: int, isvc: str | None = "fraud", uid: str = "u1", **extra: Any
) -> dict[str, Any]:
    labels = {"sluice.dev/isvc": isvc} if isvc else {}
    meta = {"name": name, "namespace": NS, "uid": uid, "resourceVersion": str(version),
            "labels": labels, "managedFields": [{"manager": "sluice-operator"}]}  # fmt: skip
    return {"apiVersion": "v1", "kind": kind, "metadata": meta, **extra}


def _names(store: Store, isvc: str = "fraud") -> dict[str, list[str]]:
    live = store.live(NS, isvc)
    found = {kind: sorted(by_name) for kind, by_name in live.objects.items()}
    if live.pods:
        found["Pod"] = [p["metadata"]["name"] for p in live.pods]
    return found


def test_watch_events_are_indexed_by_the_isvc_label() -> None:
    store = Store(owner_label)
    assert store.observe("ADDED", _obj("Service", "fraud", 1)) == (NS, "fraud")
    assert store.observe("ADDED", _obj("Pod", "fraud-b", 2, uid="p2")) == (NS, "fraud")
    assert store.observe("ADDED", _obj("Pod", "fraud-a", 3, uid="p1")) == (NS, "fraud")
    assert store.observe("ADDED", _obj("Service", "ranker", 4, isvc="ranker")) == (NS, "ranker")
    assert _names(store) == {"Service": ["fraud"], "Pod": ["fraud-a", "fraud-b"]}
    assert _names(store, "ranker") == {"Service": ["ranker"]}
    assert store.observe("DELETED", _obj("Service", "fraud", 5)) == (NS, "fraud")
    assert _names(store) == {"Pod": ["fraud-a", "fraud-b"]}


def test_an_older_or_equal_version_never_replaces_a_newer_one() -> None:
    store = Store(owner_label)
    store.written(_obj("ConfigMap", "c", 10, data={"a": "2"}))
    # The watch echo of our own write, then an event from before it: neither changes anything.
    assert store.observe("MODIFIED", _obj("ConfigMap", "c", 10, data={"a": "2"})) is None
    assert store.observe("MODIFIED", _obj("ConfigMap", "c", 9, data={"a": "1"})) is None
    assert (store.get("ConfigMap", NS, "c") or {})["data"] == {"a": "2"}
    assert store.observe("MODIFIED", _obj("ConfigMap", "c", 11, data={"a": "3"})) == (NS, "fraud")
    assert (store.get("ConfigMap", NS, "c") or {})["data"] == {"a": "3"}


def test_a_recreated_object_replaces_the_old_one_whatever_its_version() -> None:
    store = Store(owner_label)
    store.observe("ADDED", _obj("Service", "s", 50, uid="old"))
    assert store.observe("ADDED", _obj("Service", "s", 7, uid="new")) == (NS, "fraud")
    assert (store.get("Service", NS, "s") or {})["metadata"]["uid"] == "new"
    assert store.observe("DELETED", _obj("Service", "s", 60, uid="old")) is None
    assert store.get("Service", NS, "s") is not None


def test_what_the_operator_deleted_stays_gone_until_recreated() -> None:
    store = Store(owner_label)
    store.observe("ADDED", _obj("Deployment", "d", 5))
    store.deleted("Deployment", NS, "d")
    assert store.get("Deployment", NS, "d") is None
    # A late update of the deleted object (still in flight on the watch) is ignored ...
    assert store.observe("MODIFIED", _obj("Deployment", "d", 6)) is None
    assert store.get("Deployment", NS, "d") is None
    # ... an object recreated under the same name is not.
    assert store.observe("ADDED", _obj("Deployment", "d", 8, uid="u2")) == (NS, "fraud")
    assert store.get("Deployment", NS, "d") is not None


def test_a_relist_replaces_only_its_kind_and_namespaces_and_says_what_changed() -> None:
    store = Store(owner_label)
    store.observe("ADDED", _obj("Service", "kept", 1))
    store.observe("ADDED", _obj("Service", "gone", 2, isvc="other"))
    store.observe("ADDED", _obj("ConfigMap", "other-kind", 3))
    elsewhere = _obj("Service", "elsewhere", 4)
    elsewhere["metadata"]["namespace"] = "search"
    store.observe("ADDED", elsewhere)
    store.deleted("Service", NS, "kept")

    changed = store.replace(
        "Service", [NS], [_obj("Service", "kept", 1), _obj("Service", "new", 5, isvc="third")]
    )
    assert changed == {(NS, "fraud"), (NS, "other"), (NS, "third")}
    assert store.get("Service", NS, "kept") is not None, "a relist outranks a tombstone"
    assert store.get("Service", NS, "gone") is None
    assert store.get("ConfigMap", NS, "other-kind") is not None
    assert store.get("Service", "search", "elsewhere") is not None
    assert store.replace("Service", [NS], [_obj("Service", "kept", 1)]) == {(NS, "third")}
    assert store.replace("Service", None, []) == {(NS, "fraud"), ("search", "fraud")}
    assert len(store) == 1


def test_a_relabelled_object_moves_and_an_unlabelled_one_is_dropped() -> None:
    store = Store(owner_label)
    store.observe("ADDED", _obj("Service", "s", 1))
    assert store.observe("MODIFIED", _obj("Service", "s", 2, isvc="ranker")) == (NS, "ranker")
    assert _names(store) == {}
    assert _names(store, "ranker") == {"Service": ["s"]}
    assert store.observe("MODIFIED", _obj("Service", "s", 3, isvc=None)) == (NS, "ranker")
    assert len(store) == 0


def test_kept_without_managed_fields_and_pods_without_their_spec() -> None:
    pod = _obj("Pod", "p", 1, spec={"containers": [{"name": "x"}]}, status={"phase": "Running"})
    assert slim(pod) == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {k: v for k, v in pod["metadata"].items() if k != "managedFields"},
        "status": {"phase": "Running"},
    }
    deployment = _obj("Deployment", "d", 1, spec={"replicas": 2})
    store = Store(owner_label)
    store.observe("ADDED", deployment)
    held = store.get("Deployment", NS, "d") or {}
    assert "managedFields" not in held["metadata"]
    assert held["spec"] == {"replicas": 2}


def test_every_reader_gets_its_own_copy() -> None:
    store = Store(owner_label)
    store.observe("ADDED", _obj("ConfigMap", "c", 1, data={"a": "1"}))
    store.live(NS, "fraud").objects["ConfigMap"]["c"]["data"]["a"] = "changed"
    (store.get("ConfigMap", NS, "c") or {})["data"]["a"] = "changed"
    assert (store.get("ConfigMap", NS, "c") or {})["data"] == {"a": "1"}


def test_inference_services_belong_to_themselves() -> None:
    store = Store(own_name)
    body = _obj("InferenceService", "fraud", 3, isvc=None)
    assert store.observe("ADDED", body) == (NS, "fraud")
    assert (store.get("InferenceService", NS, "fraud") or {})["metadata"]["name"] == "fraud"
