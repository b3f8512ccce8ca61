"""`python -m bench.operator_floor`: the control plane's own time for what 1,000
InferenceServices become, with no operator at all.

The operator's all-Ready time (`bench.operator_scale`) includes what the API server, etcd, the
controller manager, the scheduler and kwok take for the Deployments, Services, ConfigMaps and
PodDisruptionBudgets it writes; on a 2-core machine that part can be most of it. This measures
that part alone, as the do-nothing server measures a model server's transport: the same mix of
InferenceServices rendered by the operator's own pure builders (what `sluice render` prints,
the final traffic split at once), server-side applied by 8 client threads to a fresh control
plane of the same build, then timed until every Deployment is available. No operator, no
InferenceService objects, no status writes, no events: nothing an operator could leave out.
`bench.operator_scale` runs it before the operator and reports both.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubernetes import client
from sluice_operator.gateway import Gateway
from sluice_operator.live import available
from sluice_operator.naming import Manifest
from sluice_operator.render_cli import render_documents
from sluice_operator.settings import Settings

from bench.operator_cluster import (
    LABEL_ISVC,
    NAMESPACE,
    RUNTIME_IMAGE,
    follow,
    fresh_cluster,
    manifest,
    mix,
    service_costs,
)
from bench.operator_scale_report import FloorRun
from tests.cluster.operator_harness import admin_api

CLIENT_THREADS = 8  # as many as create the InferenceServices in bench.operator_scale
TIMEOUT = 600.0


def floor_objects(count: int) -> list[Manifest]:
    """What `count` InferenceServices of the benchmark's mix become, in the order the
    operator applies them (each InferenceService's objects together)."""
    documents = [manifest(f"bench-{i:04d}", mix(i)) for i in range(count)]
    return render_documents(documents, Settings(runtime_image=RUNTIME_IMAGE))


class Availability:
    """Names of the bench namespace's Deployments that are available now, from one watch."""

    def __init__(self, api: client.ApiClient) -> None:
        self._api = api
        self._available: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()

    @contextmanager
    def running(self) -> Iterator[Availability]:
        apps = client.AppsV1Api(self._api)
        stream = (apps.list_namespaced_deployment, (NAMESPACE,), {"label_selector": LABEL_ISVC})
        thread = threading.Thread(
            target=follow, args=(*stream, self._stop, self._on_object), daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=10)

    def _on_object(self, event: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        with self._lock:
            if event != "DELETED" and available(obj):
                self._available.add(name)
            else:
                self._available.discard(name)

    def count(self) -> int:
        with self._lock:
            return len(self._available)


def measure(workdir: Path, count: int, timeout: float = TIMEOUT) -> FloorRun:
    """Apply `count` InferenceServices' objects with no operator; time them to available."""
    objects = floor_objects(count)
    kinds = Counter(obj["kind"] for obj in objects)
    run = FloorRun(count=count, objects=dict(sorted(kinds.items())))
    with fresh_cluster(workdir) as cluster:
        api = admin_api(cluster)
        gateway = Gateway(api)
        with Availability(api).running() as seen:
            services0 = service_costs(cluster)
            began = time.monotonic()
            with ThreadPoolExecutor(max_workers=CLIENT_THREADS) as pool:
                list(pool.map(gateway.apply, objects))
            applied = time.monotonic()
            run.apply_seconds = applied - began
            deadline = applied + timeout
            while True:
                ready, now = seen.count(), time.monotonic()
                print(
                    f"  floor +{now - applied:6.1f}s  available {ready:5d}/{run.deployments}",
                    file=sys.stderr,
                )
                if ready == run.deployments or now > deadline:
                    break
                time.sleep(1.0)
            run.available_seconds, run.available = now - applied, ready
            run.services = service_costs(cluster) - services0
    return run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.operator_floor", description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="sluice-floor-"))
    try:
        run = measure(workdir, args.count)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(run.text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
