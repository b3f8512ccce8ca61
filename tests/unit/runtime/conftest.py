"""Async unit tests here run on asyncio (the runtime's loop), through anyio's plugin."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
