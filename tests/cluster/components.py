"""What the local control plane is made of: state layout, command lines, kubeconfigs, nodes.

Pure functions only; `controlplane.py` does the I/O. The flags are those a kubeadm cluster
uses where the operator depends on them (RBAC and Node authorization, ServiceAccount token
signing, admission with ValidatingAdmissionPolicy, garbage collection, EndpointSlices), and
everything binds to 127.0.0.1.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cluster.pki import Pki

BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "kubectl",
    "helm",
)
KWOK_STAGES = "kwok-stages.yaml"
"""kwok's stock node and pod stages, assembled next to the binaries by the build step."""

SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
ISSUER = "https://kubernetes.default.svc.cluster.local"
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
GPU_LABEL = "nvidia.com/gpu.present"
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class Layout:
    """Every file a control plane writes lives under `root`, so removing it leaves nothing."""

    root: Path

    @property
    def pki(self) -> Pki:
        return Pki(self.root / "pki")

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def processes(self) -> Path:
        return self.root / "processes.json"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def tools_home(self) -> Path:
        """kubectl's discovery cache and helm's config, kept away from the user's $HOME."""
        return self.root / "home"

    def cert_dir(self, component: str) -> Path:
        return self.root / "certs" / component


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int


def etcd_args(bin_dir: Path, layout: Layout, ports: Ports) -> list[str]:
    client = f"http://127.0.0.1:{ports.etcd_client}"
    peer = f"http://127.0.0.1:{ports.etcd_peer}"
    return [
        str(bin_dir / "etcd"),
        "--name=sluice",
        f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=sluice={peer}",
        "--unsafe-no-fsync",  # test data: durability across power loss buys nothing
        "--log-level=warn",
    ]


def apiserver_args(bin_dir: Path, layout: Layout, ports: Ports) -> list[str]:
    pki = layout.pki
    return [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={ports.apiserver}",
        f"--cert-dir={layout.cert_dir('kube-apiserver')}",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--client-ca-file={pki.ca_cert}",
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        f"--service-account-issuer={ISSUER}",
        f"--service-account-key-file={pki.service_account_pub}",
        f"--service-account-signing-key-file={pki.service_account_key}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        # The `kubernetes` Service would point at 127.0.0.1, which Endpoints refuse; nothing
        # runs inside this cluster that needs to reach the API server through it.
        "--endpoint-reconciler-type=none",
        "--allow-privileged=true",
        "--profiling=false",
    ]


def _secure_serving(layout: Layout, component: str, port: int) -> list[str]:
    """Flags shared by the controller manager and scheduler: a /healthz to poll, admin creds."""
    return [
        f"--kubeconfig={layout.kubeconfig}",
        f"--authentication-kubeconfig={layout.kubeconfig}",
        f"--authorization-kubeconfig={layout.kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={layout.cert_dir(component)}",
        "--leader-elect=false",  # one replica: skip the lease wait at start-up
        "--profiling=false",
    ]


def controller_manager_args(bin_dir: Path, layout: Layout, ports: Ports) -> list[str]:
    pki = layout.pki
    component = "kube-controller-manager"
    return [
        str(bin_dir / component),
        *_secure_serving(layout, component, ports.controller_manager),
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki.service_account_key}",
        f"--root-ca-file={pki.ca_cert}",
        f"--cluster-signing-cert-file={pki.ca_cert}",
        f"--cluster-signing-key-file={pki.ca_key}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        # The default client limit (20 requests/s) would make Deployments of a thousand
        # InferenceServices (bench/operator_scale.py) wait on the controllers, not on us.
        "--kube-api-qps=200",
        "--kube-api-burst=400",
    ]


def scheduler_args(bin_dir: Path, layout: Layout, ports: Ports) -> list[str]:
    component = "kube-scheduler"
    return [
        str(bin_dir / component),
        *_secure_serving(layout, component, ports.scheduler),
        "--kube-api-qps=200",  # binds thousands of pods at once in bench/operator_scale.py
    ]


def kwok_args(bin_dir: Path, layout: Layout) -> list[str]:
    return [
        str(bin_dir / "kwok"),
        f"--kubeconfig={layout.kubeconfig}",
        f"--config={bin_dir / KWOK_STAGES}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
        f"--cidr={POD_CIDR}",
        "--node-lease-duration-seconds=40",
    ]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def kubeconfig(server: str, ca_pem: bytes, user_name: str, user: dict[str, str]) -> dict[str, Any]:
    """A self-contained kubeconfig (credentials inline) for one user of this cluster."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "sluice",
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)},
            }
        ],
        "users": [{"name": user_name, "user": user}],
        "contexts": [{"name": user_name, "context": {"cluster": "sluice", "user": user_name}}],
        "current-context": user_name,
    }


def admin_kubeconfig(server: str, pki: Pki) -> dict[str, Any]:
    user = {
        "client-certificate-data": _b64(pki.admin_cert.read_bytes()),
        "client-key-data": _b64(pki.admin_key.read_bytes()),
    }
    return kubeconfig(server, pki.ca_cert.read_bytes(), "admin", user)


def fake_node(name: str, gpus: int = 0) -> dict[str, Any]:
    """A Node that kwok keeps Ready; `gpus` > 0 makes it look like an NVIDIA GPU node."""
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
    }
    capacity = {"cpu": "16", "memory": "64Gi", "pods": "110"}
    if gpus:
        labels[GPU_LABEL] = "true"
        labels["nvidia.com/gpu.count"] = str(gpus)
        capacity[GPU_RESOURCE] = str(gpus)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def fake_nodes() -> list[dict[str, Any]]:
    """Two plain CPU nodes and two nodes with 4 GPUs each."""
    return [
        fake_node("kwok-cpu-0"),
        fake_node("kwok-cpu-1"),
        fake_node("kwok-gpu-0", gpus=4),
        fake_node("kwok-gpu-1", gpus=4),
    ]
