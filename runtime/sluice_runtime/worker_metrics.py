"""Gathering every worker's metrics for a scrape that reached one of them.

Each worker answers its own exposition on a Unix socket in a folder the supervisor made
for this set of workers (`worker-<i>.sock`); the worker a scrape reaches asks the others
and merges the answers (exposition.py). A worker that does not answer within a second is
left out of that scrape and logged, rather than holding Prometheus until its timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from sluice_runtime.exposition import merge_expositions

log = logging.getLogger(__name__)

ASK_TIMEOUT = 1.0


def socket_path(folder: Path, worker: int) -> Path:
    return folder / f"worker-{worker}.sock"


class WorkerMetrics:
    """One worker's side: answer siblings' requests, and gather all for a scrape."""

    def __init__(self, folder: Path, worker: int, workers: int, render: Callable[[], bytes]):
        self._folder = folder
        self._worker = worker
        self._workers = workers
        self._render = render
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        path = socket_path(self._folder, self._worker)
        self._server = await asyncio.start_unix_server(self._answer, path=str(path))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(self._render())
            await writer.drain()
        finally:
            writer.close()

    async def _ask(self, worker: int) -> str | None:
        path = socket_path(self._folder, worker)
        try:
            async with asyncio.timeout(ASK_TIMEOUT):
                reader, writer = await asyncio.open_unix_connection(str(path))
                try:
                    return (await reader.read()).decode()
                finally:
                    writer.close()
        except (OSError, TimeoutError) as error:
            log.warning("metrics: worker %d did not answer (%s); left out", worker, error)
            return None

    async def exposition(self) -> bytes:
        """Every worker's series, each labelled with its worker."""
        others = [w for w in range(self._workers) if w != self._worker]
        answers = await asyncio.gather(*(self._ask(w) for w in others))
        texts = {str(self._worker): self._render().decode()}
        texts.update({str(w): text for w, text in zip(others, answers, strict=True) if text})
        return merge_expositions(texts)
