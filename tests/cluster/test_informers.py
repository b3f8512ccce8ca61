"""The informers on a real API server: what others create, relabel and delete reaches the store
(and wakes the InferenceService it belongs to), unlabelled objects never do, and a watch the
account may not make is named when reconciliation asks whether the store is filled.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import config
from sluice_operator.gateway import Gateway
from sluice_operator.informers import Informers, NotSynced
from sluice_operator.store import Key, Store, owner_label

from tests.cluster.controlplane import ControlPlane
from tests.cluster.operator_harness import admin_api
from tests.cluster.processes import wait_for

SYNC_TIMEOUT = 60.0
SEEN_TIMEOUT = 30.0


def _config_map(namespace: str, name: str, isvc: str | None) -> str:
    labels = {"sluice.dev/isvc": isvc} if isvc else {}
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "data": {"a": "1"},
        }
    )


@pytest.fixture
def running(
    control_plane: ControlPlane, namespace: str
) -> Iterator[tuple[Store, queue.Queue[Key]]]:
    """Informers of one namespace, as the cluster admin; the keys they woke, in a queue."""
    store = Store(owner_label)
    woken: queue.Queue[Key] = queue.Queue()
    informers = Informers(Gateway(admin_api(control_plane)), store, (namespace,))
    informers.start(woken.put)
    try:
        informers.wait_synced(SYNC_TIMEOUT)
        yield store, woken
    finally:
        informers.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("watch-") and t.is_alive()]


def _woken(woken: queue.Queue[Key], key: Key) -> None:
    """Wait until `key` was woken (other keys may be woken in between)."""
    while woken.get(timeout=SEEN_TIMEOUT) != key:
        pass


def test_what_others_do_to_labelled_children_reaches_the_store(
    control_plane: ControlPlane, namespace: str, running: tuple[Store, queue.Queue[Key]]
) -> None:
    store, woken = running
    control_plane.kubectl("apply", "-f", "-", input=_config_map(namespace, "mine", "fraud"))
    control_plane.kubectl("apply", "-f", "-", input=_config_map(namespace, "plain", None))
    _woken(woken, (namespace, "fraud"))
    assert store.get("ConfigMap", namespace, "mine") is not None
    control_plane.kubectl(
        "create", "service", "clusterip", "fraud", "--tcp=80:8080", "-n", namespace
    )
    control_plane.kubectl("label", "service", "fraud", "sluice.dev/isvc=fraud", "-n", namespace)
    _woken(woken, (namespace, "fraud"))
    live = store.live(namespace, "fraud")
    assert sorted(live.objects) == ["ConfigMap", "Service"]

    control_plane.kubectl(
        "label", "service", "fraud", "sluice.dev/isvc=ranker", "--overwrite", "-n", namespace
    )
    _woken(woken, (namespace, "ranker"))
    assert sorted(store.live(namespace, "ranker").objects) == ["Service"]
    assert sorted(store.live(namespace, "fraud").objects) == ["ConfigMap"]

    control_plane.kubectl("delete", "configmap", "mine", "-n", namespace)
    _woken(woken, (namespace, "fraud"))
    assert store.live(namespace, "fraud").objects == {}
    # The label filter is the API server's: the unlabelled ConfigMap never arrived.
    assert store.get("ConfigMap", namespace, "plain") is None
    assert len(store) == 1


def test_objects_there_before_the_start_are_listed(
    control_plane: ControlPlane, namespace: str
) -> None:
    control_plane.kubectl("apply", "-f", "-", input=_config_map(namespace, "early", "fraud"))
    store = Store(owner_label)
    informers = Informers(Gateway(admin_api(control_plane)), store, (namespace,))
    informers.start(lambda key: None)
    try:
        informers.wait_synced(SYNC_TIMEOUT)
        assert store.get("ConfigMap", namespace, "early") is not None
    finally:
        informers.stop()


def test_a_forbidden_watch_is_named_while_waiting_for_the_store(
    control_plane: ControlPlane,
    namespace: str,
    kubeconfig_for_service_account: Callable[[str, str], Path],
) -> None:
    control_plane.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    kubeconfig = kubeconfig_for_service_account(namespace, "nobody")
    informers = Informers(
        Gateway(config.new_client_from_config(config_file=str(kubeconfig))),
        Store(owner_label),
        (namespace,),
    )
    informers.start(lambda key: None)
    try:
        wait_for(lambda: _not_synced_reason(informers) is not None, 30, "a failed listing")
        reason = _not_synced_reason(informers) or ""
        assert "Deployment in " + namespace in reason
        assert "403" in reason or "Forbidden" in reason, reason
    finally:
        informers.stop()


def _not_synced_reason(informers: Informers) -> str | None:
    """NotSynced's message once a listing has failed, None before."""
    try:
        informers.wait_synced(0.1)
    except NotSynced as error:
        return str(error) if "(" in str(error) else None
    return None
