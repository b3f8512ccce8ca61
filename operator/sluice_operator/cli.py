"""`sluice-operator`: run the operator (the Helm chart runs exactly this command).

Credentials: the in-cluster service account, else KUBECONFIG (~/.kube/config), for kopf and
the gateway alike. Peering: `--standalone` (the default) for one replica; `--peering NAME`
for several replicas, of which only the highest priority one acts. Replicas of one Deployment
share their arguments, so without `--priority` each picks a random one (equal priorities
would make kopf pause them all).
"""

from __future__ import annotations

import argparse
import logging
import random
from collections.abc import Sequence

import kopf
from prometheus_client import start_http_server

from sluice_operator.cluster import Cluster
from sluice_operator.gateway import Gateway, load_api_client
from sluice_operator.handlers import Wakeups, build_registry
from sluice_operator.informers import Informers
from sluice_operator.metrics import OperatorMetrics
from sluice_operator.reconcile import Reconciler
from sluice_operator.settings import Settings
from sluice_operator.store import Store, own_name, owner_label

FINALIZER = "serving.sluice.dev/operator"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; see `sluice-operator --help`."""
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="sluice-operator", description="Reconcile InferenceServices into revisions."
    )
    scope = parser.add_mutually_exclusive_group(required=True)
    scope.add_argument(
        "--namespace", action="append", dest="namespaces", metavar="NS", help="repeatable"
    )
    scope.add_argument("--all-namespaces", action="store_true", help="watch every namespace")
    peering = parser.add_mutually_exclusive_group()
    peering.add_argument("--peering", metavar="NAME", help="kopf peering object (HA replicas)")
    peering.add_argument("--standalone", action="store_true", help="no peering (default)")
    parser.add_argument("--priority", type=int, help="peering priority (default: random)")
    parser.add_argument("--metrics-port", type=int, default=9090, help="0 turns it off")
    parser.add_argument("--health-port", type=int, default=8080, help="/healthz; 0 turns it off")
    parser.add_argument("--runtime-image", default=defaults.runtime_image)
    parser.add_argument("--router-image", default=defaults.router_image)
    parser.add_argument("--router-replicas", type=int, default=defaults.router_replicas)
    parser.add_argument("--cluster-domain", default=defaults.cluster_domain)
    parser.add_argument("--drain-seconds", type=int, default=defaults.drain_seconds)
    parser.add_argument("--resync-seconds", type=float, default=defaults.resync_seconds)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> Settings:
    """Validated operator settings from the command line."""
    return Settings(
        runtime_image=args.runtime_image,
        router_image=args.router_image,
        router_replicas=args.router_replicas,
        cluster_domain=args.cluster_domain,
        drain_seconds=args.drain_seconds,
        resync_seconds=args.resync_seconds,
    )


def kopf_settings(args: argparse.Namespace) -> kopf.OperatorSettings:
    """kopf tuned for this operator: our own Events, no scanning."""
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False
    settings.persistence.finalizer = FINALIZER
    settings.scanning.disabled = True
    settings.peering.standalone = args.peering is None
    if args.peering is not None:
        settings.peering.name = args.peering
        settings.peering.mandatory = True
        settings.peering.priority = (
            args.priority if args.priority is not None else random.randint(1, 2**31)
        )
    return settings


def main(argv: Sequence[str] | None = None) -> None:
    """Parse, serve metrics, run kopf until a signal stops it."""
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    settings = settings_from(args)
    metrics = OperatorMetrics.create()
    if args.metrics_port:
        start_http_server(args.metrics_port, registry=metrics.registry)
    isvcs, children = Store(own_name), Store(owner_label)
    namespaces = None if args.all_namespaces else tuple(args.namespaces)
    # Watches hold their connections for minutes: a client of their own leaves the reconcile
    # threads' pool to them.
    informers = Informers(Gateway(load_api_client()), children, namespaces)
    cluster = Cluster(Gateway(load_api_client()), isvcs, children, informers)
    reconciler = Reconciler(cluster, settings, metrics)
    registry = build_registry(reconciler, Wakeups(), settings.resync_seconds, isvcs, informers)
    health = f"http://0.0.0.0:{args.health_port}/healthz" if args.health_port else None
    kopf.run(
        registry=registry,
        settings=kopf_settings(args),
        standalone=args.peering is None,
        peering_name=args.peering,
        clusterwide=args.all_namespaces,
        namespaces=args.namespaces or (),
        liveness_endpoint=health,
    )
