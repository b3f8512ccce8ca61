"""Where the peers and the load generators live: their own virtualenvs and cached binaries.

KServe and MLServer cannot share Sluice's virtualenv: MLServer 1.7.1 needs fastapi<0.116
(Sluice pins 0.165.0) and an older uvloop, and KServe drags in kubernetes, pandas and
cloudevents with their own floors. So each peer gets a virtualenv of its own under
~/.cache/sluice/bench/<peer>-<version>/, installed with --no-deps from a full lock file in
bench/peers/ and rebuilt only when that file changes. The `[bench]` extra holds what the
benchmark driver itself needs inside Sluice's virtualenv (the profiler), never a peer.
wrk and grpcload (bench/peers/grpcload/) come from hack/bench-tools.sh, which `make bench`
runs first.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CACHE = Path.home() / ".cache" / "sluice"
PEERS_DIR = Path(__file__).resolve().parent / "peers"
GRPCLOAD_SOURCES = ("go.mod", "go.sum", "main.go")
_STAMP = ".lock-sha256"


@dataclass(frozen=True)
class Peer:
    """A peer server pinned to one version, installed from bench/peers/<name>-<version>.txt."""

    name: str
    version: str

    @property
    def lock(self) -> Path:
        return PEERS_DIR / f"{self.name}-{self.version}.txt"

    @property
    def venv(self) -> Path:
        return CACHE / "bench" / f"{self.name}-{self.version}"

    @property
    def bin(self) -> Path:
        return self.venv / "bin"


KSERVE = Peer("kserve", "0.21.0")
MLSERVER = Peer("mlserver", "1.7.1")


def lock_digest(lock: Path) -> str:
    """What the stamp in a peer virtualenv records: the lock file's sha256."""
    return hashlib.sha256(lock.read_bytes()).hexdigest()


def ensure_peer(peer: Peer) -> Path:
    """The peer's virtualenv, (re)built when missing or made from another lock; its bin dir."""
    stamp = peer.venv / _STAMP
    digest = lock_digest(peer.lock)
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return peer.bin
    print(f"installing {peer.name} {peer.version} into {peer.venv} (one-off)", file=sys.stderr)
    shutil.rmtree(peer.venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(peer.venv)], check=True)
    pip = [str(peer.bin / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-deps", "-r", str(peer.lock)], check=True)
    stamp.write_text(digest + "\n")
    return peer.bin


@dataclass(frozen=True)
class Tools:
    """The compiled load generators."""

    wrk: Path
    grpcload: Path


def grpcload_hash() -> str:
    """The cache key hack/bench-tools.sh builds grpcload under: its sources' sha256, 12 hex."""
    sources = PEERS_DIR / "grpcload"
    digest = hashlib.sha256(b"".join((sources / name).read_bytes() for name in GRPCLOAD_SOURCES))
    return digest.hexdigest()[:12]


def find_tools() -> Tools:
    """wrk and grpcload, or an error that says how to get them."""
    wrk = shutil.which("wrk")
    grpcload = CACHE / "grpcload" / grpcload_hash() / "grpcload"
    if wrk is None or not grpcload.is_file():
        raise RuntimeError(
            "wrk or grpcload is missing: run `bash hack/bench-tools.sh` (make bench does)"
        )
    return Tools(wrk=Path(wrk), grpcload=grpcload)
