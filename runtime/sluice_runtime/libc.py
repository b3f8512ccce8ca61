"""The C library's own calls that Python does not wrap (mallopt, prctl), found once.

Linux and glibc are what the runtime image ships; elsewhere (musl, macOS) a call may be
missing, and its caller then leaves the process as it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable
from functools import cache
from typing import Any


@cache
def _library() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def libc_function(name: str) -> Callable[..., Any] | None:
    """The C library's function `name`, or None where this libc has no such function."""
    library = _library()
    function: Callable[..., Any] | None = getattr(library, name, None)
    return function
