"""`sluice-runtime fetch` and `resolve` as processes: sharing the cache, bounded memory."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runtime.registry_servers import (
    FileServer,
    Route,
    Tls,
    file_server,
    make_tls,
    sha256_of,
    wait_until,
)

SLUICE_RUNTIME = str(Path(sys.executable).with_name("sluice-runtime"))
GIB = 1 << 30
# Runs a command and writes its exit code and peak RSS (KiB) to argv[1]. A small parent of its
# own, because Linux charges a child's ru_maxrss with what it shared with its parent before
# exec: measured straight from pytest, the fetch would be billed for pytest's own size.
PEAK_RSS = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as report:
    report.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def server(tls: Tls) -> Iterator[FileServer]:
    with file_server(tls) as running:
        yield running


def cli_env(tls: Tls, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(SLUICE_CA_BUNDLE=str(tls.ca), SLUICE_CACHE_DIR=str(cache))
    return env


def fetch_argv(uri: str, digest: str, dest: Path) -> list[str]:
    return [SLUICE_RUNTIME, "fetch", "--model-uri", uri, "--digest", digest, "--dest", str(dest)]


def test_two_processes_fetching_one_model_share_one_download(
    tmp_path: Path, tls: Tls, server: FileServer
) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(8 << 20))
    gate = threading.Event()
    server.routes["/m.onnx"] = Route(file=model, gate=gate)
    digest, cache = sha256_of(model), tmp_path / "cache"
    env = cli_env(tls, cache)
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for index, log in enumerate(logs):
            with log.open("wb") as sink:
                processes.append(
                    subprocess.Popen(
                        fetch_argv(server.url("/m.onnx"), digest, tmp_path / f"dest{index}"),
                        stdout=subprocess.PIPE,
                        stderr=sink,
                        env=env,
                    )
                )
            if index == 0:
                # The first download is under way and held halfway by the gate...
                wait_until(lambda: len(server.hits("/m.onnx")) == 1, "the first download")
        # ...and the second process has found it and waits instead of downloading too.
        wait_until(
            lambda: "being fetched by another process" in logs[1].read_text(),
            "the second fetch to wait for the first",
        )
        gate.set()
        outputs = [process.communicate(timeout=120)[0].decode().strip() for process in processes]
    finally:
        gate.set()
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)

    assert [process.returncode for process in processes] == [0, 0], [p.read_text() for p in logs]
    assert outputs == [digest, digest]
    assert len(server.hits("/m.onnx")) == 1
    assert [p.name for p in (cache / "sha256").iterdir()] == [digest.removeprefix("sha256:")]
    assert list((cache / "tmp").iterdir()) == []
    for index in (0, 1):
        assert (tmp_path / f"dest{index}" / "model.onnx").read_bytes() == model.read_bytes()


def test_a_1_gib_model_is_fetched_with_bounded_memory(tmp_path: Path, tls: Tls) -> None:
    model = tmp_path / "huge.onnx"
    with model.open("wb") as handle:
        handle.truncate(GIB)  # sparse zeros: the server still streams every byte
    hasher = hashlib.sha256()
    zeros = bytes(1 << 20)
    for _ in range(GIB >> 20):
        hasher.update(zeros)
    digest = f"sha256:{hasher.hexdigest()}"
    cache, dest = tmp_path / "cache", tmp_path / "dest"
    stdout = tmp_path / "stdout"
    report = tmp_path / "peak"
    # Plain HTTP: the same streaming path as https at a fraction of the CPU on a shared machine.
    with file_server(None) as server, stdout.open("wb") as sink:
        server.routes["/huge.onnx"] = Route(file=model)
        subprocess.run(
            [
                sys.executable,
                "-c",
                PEAK_RSS,
                str(report),
                *fetch_argv(server.url("/huge.onnx"), digest, dest),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=cli_env(tls, cache),
            timeout=600,
            check=True,
        )
    returncode, peak_kib = map(int, report.read_text().split())
    peak_mib = peak_kib / 1024
    try:
        assert returncode == 0, stdout.read_text()
        assert stdout.read_text().strip().splitlines()[-1] == digest
        assert (dest / "model.onnx").stat().st_size == GIB
        print(f"peak RSS of `sluice-runtime fetch` for a 1 GiB model: {peak_mib:.0f} MiB")
        assert peak_mib < 128, f"peak RSS {peak_mib:.0f} MiB for a 1024 MiB download"
    finally:
        for leftover in (dest / "model.onnx", *(cache / "sha256").glob("*")):
            leftover.unlink(missing_ok=True)


def test_resolve_prints_the_digest_that_pins_a_url(
    tmp_path: Path, tls: Tls, server: FileServer
) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(4096))
    server.routes["/m.onnx"] = Route(file=model)
    uri = server.url("/m.onnx")

    resolved = subprocess.run(
        [SLUICE_RUNTIME, "resolve", uri],
        env=cli_env(tls, tmp_path / "cache"),
        capture_output=True,
        timeout=120,
        check=False,
    )
    fetched = subprocess.run(
        fetch_argv(uri, sha256_of(model), tmp_path / "dest"),
        env=cli_env(tls, tmp_path / "cache"),
        capture_output=True,
        timeout=120,
        check=False,
    )

    assert resolved.returncode == 0, resolved.stderr.decode()
    assert resolved.stdout.decode() == f"uri: {uri}\ndigest: {sha256_of(model)}\n"
    assert fetched.returncode == 0, fetched.stderr.decode()
    assert len(server.hits("/m.onnx")) == 1  # the fetch found what resolve downloaded
