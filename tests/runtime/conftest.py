"""Runtime tier: the runtime as a real subprocess on free 127.0.0.1 ports.

`start_runtime(model, **flags)` starts `python -m sluice_runtime serve`, waits for
`/v2/health/ready` (or not, with `wait_ready=False`) and stops every process it
started when the test ends, so no test leaves one behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.harness import RuntimeProcess, StartRuntime, free_port


@pytest.fixture
def start_runtime(tmp_path: Path) -> Iterator[StartRuntime]:
    """Factory: start_runtime(model_path_or_uri, wait_ready=True, env=None, **flags).

    Flags are the serve flags with '_' for '-' (max_batch_size=8); model name and
    version default to "model" and "1".
    """
    started: list[RuntimeProcess] = []

    def start(
        model: Path | str,
        *,
        wait_ready: bool = True,
        env: dict[str, str] | None = None,
        **flags: Any,
    ) -> RuntimeProcess:
        uri = model if isinstance(model, str) else model.resolve().as_uri()
        flags.setdefault("model_name", "model")
        flags.setdefault("model_version", "1")
        flags.setdefault("http_port", free_port())
        flags.setdefault("grpc_port", free_port())
        flags.setdefault("host", "127.0.0.1")
        flags.setdefault("cache_dir", str(tmp_path / "cache"))
        argv = [sys.executable, "-m", "sluice_runtime", "serve", "--model-uri", uri]
        for name, value in flags.items():
            argv += ["--" + name.replace("_", "-"), str(value)]
        log_path = tmp_path / f"runtime-{len(started)}.log"
        log_file = log_path.open("wb")
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        child_env.update(env or {})
        process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=child_env)
        handle = RuntimeProcess(
            process=process,
            http_port=int(flags["http_port"]),
            grpc_port=int(flags["grpc_port"]),
            log_path=log_path,
            model_name=str(flags["model_name"]),
            model_version=str(flags["model_version"]),
            _log_file=log_file,
        )
        started.append(handle)
        if wait_ready:
            handle.wait_ready()
        return handle

    yield start
    for handle in started:
        if handle.process.poll() is None:
            handle.process.kill()
            handle.process.wait(10)
        handle._log_file.close()
