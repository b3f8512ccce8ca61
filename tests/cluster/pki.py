"""Certificates and keys for a throwaway control plane, made with the openssl CLI.

The API server needs a serving certificate its clients can verify, a client CA so the admin
(and the controllers, scheduler and kwok) can authenticate, and a key pair to sign
ServiceAccount tokens with. The openssl binary is on every Debian machine and keeps a
cryptography dependency out of the project.
"""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

SERVICE_CLUSTER_IP = "10.96.0.1"
"""First address of the service range: the in-cluster `kubernetes` Service, so it needs a SAN."""

_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
authorityKeyIdentifier = keyid
subjectAltName = {sans}
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
"""

_SERVER_SANS = (
    "IP:127.0.0.1",
    f"IP:{SERVICE_CLUSTER_IP}",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class Pki:
    """Where each file lives; every path is inside one folder of the cluster's state."""

    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def serving_cert(self) -> Path:
        return self.root / "apiserver.crt"

    @property
    def serving_key(self) -> Path:
        return self.root / "apiserver.key"

    @property
    def admin_cert(self) -> Path:
        return self.root / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.root / "admin.key"

    @property
    def service_account_key(self) -> Path:
        return self.root / "sa.key"

    @property
    def service_account_pub(self) -> Path:
        return self.root / "sa.pub"


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def _new_key(path: Path) -> None:
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path)
    )


def _issue(pki: Pki, config: Path, name: str, subject: str, extensions: str) -> None:
    """Signs a new key pair `<name>.key`/`<name>.crt` with the CA."""
    key, csr, cert = (pki.root / f"{name}.{ext}" for ext in ("key", "csr", "crt"))
    _new_key(key)
    _openssl(
        "req", "-new", "-key", str(key), "-subj", subject, "-config", str(config), "-out", str(csr)
    )
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(pki.ca_cert), "-CAkey", str(pki.ca_key),
        "-set_serial", f"0x{secrets.token_hex(8)}", "-days", "3650",
        "-extfile", str(config), "-extensions", extensions, "-out", str(cert),
    )  # fmt: skip
    csr.unlink()


def create_pki(root: Path) -> Pki:
    """Makes a fresh CA, the API server's serving pair, an admin client pair and the SA keys.

    The admin certificate is in the `system:masters` group, which RBAC always allows; every
    other identity in the tests comes from a ServiceAccount token, as in a real cluster.
    """
    root.mkdir(parents=True, exist_ok=True)
    pki = Pki(root)
    config = root / "openssl.cnf"
    config.write_text(_CONFIG.format(sans=", ".join(_SERVER_SANS)))
    _new_key(pki.ca_key)
    _openssl(
        "req", "-x509", "-new", "-key", str(pki.ca_key), "-subj", "/CN=sluice-test-ca",
        "-days", "3650", "-config", str(config), "-extensions", "ca", "-out", str(pki.ca_cert),
    )  # fmt: skip
    _issue(pki, config, "apiserver", "/CN=kube-apiserver", "server")
    _issue(pki, config, "admin", "/O=system:masters/CN=sluice-admin", "client")
    _new_key(pki.service_account_key)
    _openssl(
        "pkey", "-in", str(pki.service_account_key), "-pubout", "-out", str(pki.service_account_pub)
    )
    return pki
