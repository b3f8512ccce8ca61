"""Runtime tier: the runtime as a real subprocess on free 127.0.0.1 ports.

`start_runtime(model, **flags)` starts `python -m sluice_runtime serve`, waits for
`/v2/health/ready` (or not, with `wait_ready=False`) and stops every process it
started when the test ends, so no test leaves one behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.harness import RuntimeProcess, StartRuntime, launch


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
        flags.setdefault("cache_dir", str(tmp_path / "cache"))
        log_path = tmp_path / f"runtime-{len(started)}.log"
        handle = launch(uri, log_path, env=env, **flags)
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
