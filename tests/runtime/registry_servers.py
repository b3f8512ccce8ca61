"""Real model stores on 127.0.0.1 for the registry tests: a TLS file server, MinIO, MLflow.

Each is a context manager that starts the server, waits for a real readiness
signal, and stops it on exit. The test modules wrap them in fixtures.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import ipaddress
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.runtime.harness import free_port

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 120.0
_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    """The test's own oracle for a small file's digest (not the code under test)."""
    return f"sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}"


def wait_until(condition: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
    """Poll `condition` until true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# --- TLS -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tls:
    """A throwaway CA and a server certificate it signed for 127.0.0.1 and localhost."""

    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def make_tls(directory: Path) -> Tls:
    """Generate the CA and the server certificate (ECDSA P-256, valid for a day)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sluice test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls = Tls(ca=directory / "ca.pem", cert=directory / "server.pem", key=directory / "key.pem")
    tls.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    tls.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tls


# --- a file server with scripted misbehaviour -----------------------------------------------


@dataclass
class Route:
    """What one path answers.

    `file` is served with Range support; `status` alone answers that status;
    `redirect` answers 302 to it; `token` requires that bearer token; `drop_after`
    cuts the first response off after that many body bytes; `gate` holds every
    response after its first half until the event is set.
    """

    file: Path | None = None
    status: int = 200
    redirect: str | None = None
    token: str | None = None
    drop_after: int | None = None
    gate: threading.Event | None = None
    served: int = 0


@dataclass(frozen=True)
class Seen:
    """A request the server received."""

    path: str
    headers: dict[str, str]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FileServer

    def log_message(self, format: str, *args: object) -> None:
        pass  # tests read `FileServer.requests` instead

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.server.record(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
        route = self.server.routes.get(path)
        if route is None:
            return self._empty(404)
        if route.token is not None and self.headers.get("Authorization") != f"Bearer {route.token}":
            return self._empty(401)
        if route.redirect is not None:
            self.send_response(302)
            self.send_header("Location", route.redirect)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if route.file is None:
            return self._empty(route.status)
        route.served += 1
        self._send_file(route, route.file)
        return None

    def _empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send_file(self, route: Route, file: Path) -> None:
        size = file.stat().st_size
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(size - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        limit = size - start
        if route.drop_after is not None and route.served == 1:
            limit = route.drop_after
        halfway = (size - start) // 2
        sent = 0
        with file.open("rb") as handle:
            handle.seek(start)
            while sent < limit:
                wanted = min(_CHUNK, limit - sent)
                if route.gate is not None:
                    if sent >= halfway:
                        route.gate.wait(START_TIMEOUT)
                    else:
                        wanted = min(wanted, halfway - sent)
                chunk = handle.read(wanted)
                if not chunk:
                    break
                self.wfile.write(chunk)
                sent += len(chunk)
        if sent < size - start:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True


class FileServer(ThreadingHTTPServer):
    """An HTTP(S) server on 127.0.0.1 answering from `routes`, recording every request."""

    daemon_threads = True

    def __init__(self, tls: Tls | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.tls = tls
        if tls is not None:
            self.socket = tls.server_context().wrap_socket(self.socket, server_side=True)
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self._lock = threading.Lock()

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def url(self, path: str) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}{path}"

    def hits(self, path: str) -> list[Seen]:
        with self._lock:
            return [seen for seen in self.requests if seen.path.split("?", 1)[0] == path]

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up mid-body are part of the script


@contextmanager
def file_server(tls: Tls | None) -> Iterator[FileServer]:
    server = FileServer(tls)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        for route in server.routes.values():
            if route.gate is not None:
                route.gate.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


# --- MinIO -----------------------------------------------------------------------------------


def minio_binary() -> Path:
    """The binary hack/deps.d/40-minio.sh built, at the version that script pins."""
    script = (REPO / "hack/deps.d/40-minio.sh").read_text()
    version = re.search(r"^MINIO_VERSION=(\S+)$", script, re.MULTILINE)
    assert version is not None, "40-minio.sh must pin MINIO_VERSION"
    binary = Path.home() / ".cache/sluice/minio" / version.group(1) / "minio"
    assert binary.is_file(), f"{binary} is missing: run `make system-deps` (hack/system-deps.sh)"
    return binary


@dataclass
class Minio:
    endpoint: str
    access_key: str
    secret_key: str
    process: subprocess.Popen[bytes]
    log: Path

    def env(self, directory: Path) -> dict[str, str]:
        """What a client needs to reach this store, the way it would in a pod, and nothing
        else: no ~/.aws files (they point into `directory`) and no instance metadata lookups."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(directory / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(directory / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self) -> Any:
        """An S3 client with the root credentials, for setting the store up."""
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )


def use_only(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace every AWS_* variable of this process with `env`'s."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@contextmanager
def minio_server(directory: Path) -> Iterator[Minio]:
    """A single-drive MinIO (supports versioned buckets) with fresh root credentials."""
    directory.mkdir(parents=True, exist_ok=True)
    port, console = free_port(), free_port()
    access_key, secret_key = "sluice-test", hashlib.sha256(os.urandom(16)).hexdigest()[:32]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(directory),
        "MINIO_ROOT_USER": access_key,
        "MINIO_ROOT_PASSWORD": secret_key,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
        "MINIO_CI_CD": "1",
    }
    log = directory / "minio.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                str(minio_binary()),
                "server",
                str(directory / "data"),
                "--address",
                f"127.0.0.1:{port}",
                "--console-address",
                f"127.0.0.1:{console}",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    server = Minio(f"http://127.0.0.1:{port}", access_key, secret_key, process, log)
    try:
        _wait_http(f"{server.endpoint}/minio/health/ready", process, log, "MinIO")
        yield server
    finally:
        _stop(process)


# --- MLflow ----------------------------------------------------------------------------------


@dataclass
class Mlflow:
    tracking_uri: str
    process: subprocess.Popen[bytes]
    log: Path
    artifacts: Path


def mlflow_env() -> dict[str, str]:
    """The environment minus MLFLOW_*/SLUICE_* settings, with MLflow's usage telemetry off
    (it would try to reach the internet and races on os.environ in the client)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SLUICE_"))}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    return env


@contextmanager
def mlflow_server(directory: Path) -> Iterator[Mlflow]:
    """`mlflow server`: SQLite backend store, artifacts proxied from a local folder."""
    port = free_port()
    artifacts = directory / "artifacts"
    log = directory / "mlflow.log"
    argv = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--backend-store-uri",
        f"sqlite:///{directory / 'mlflow.db'}",
        "--artifacts-destination",
        str(artifacts),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    env = mlflow_env()
    # No job runner: it forks seven huey consumers (~270 MB each) that a registry never needs.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=directory,
            start_new_session=True,
        )
    server = Mlflow(f"http://127.0.0.1:{port}", process, log, artifacts)
    try:
        _wait_http(f"{server.tracking_uri}/health", process, log, "MLflow")
        yield server
    finally:
        _stop(process)


_REGISTER = """
import sys
import mlflow, mlflow.onnx, onnx
from mlflow import MlflowClient
name, alias, artifact_location, *paths = sys.argv[1:]
if artifact_location:
    experiment = mlflow.create_experiment(name, artifact_location=artifact_location)
    mlflow.set_experiment(experiment_id=experiment)
for path in paths:
    with mlflow.start_run():
        mlflow.onnx.log_model(
            onnx.load(path), name="model", registered_model_name=name,
            pip_requirements=["onnxruntime"],
        )
if alias:
    client = MlflowClient()
    latest = max(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
    client.set_registered_model_alias(name, alias, str(latest))
"""


def register_versions(
    server: Mlflow,
    name: str,
    models: list[Path],
    alias: str = "",
    artifact_location: str = "",
    env: dict[str, str] | None = None,
) -> None:
    """Log each model with the real MLflow client, as versions 1..n; point `alias` at the last.

    With `artifact_location` the versions go to a new experiment whose artifacts the client
    writes there itself (an s3:// root) instead of through the tracking server.
    """
    child_env = {**mlflow_env(), **(env or {}), "MLFLOW_TRACKING_URI": server.tracking_uri}
    result = subprocess.run(
        [sys.executable, "-c", _REGISTER, name, alias, artifact_location, *map(str, models)],
        env=child_env,
        capture_output=True,
        timeout=START_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")


# --- shared ----------------------------------------------------------------------------------


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited with {process.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(url, timeout=2.0).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(ready, f"{what} at {url}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server, then whatever it forked and left behind (it leads its own group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(20)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
