"""Running a started coroutine on to its end without an asyncio Task.

A unary gRPC call starts eagerly, in the loop turn that completed its request, and runs up
to its first suspension: the batcher's future for the model's answer. What remains is one
resumption when that future is done. A Task for it costs its creation, an entry in asyncio's
weak set of all tasks (added and removed in Python), a first step scheduled for the next
loop turn, and two relay frames on every resumption; with one call in flight that was about
a twentieth of the loop's work per call (bench/results/optimizations.md). `Resumed` does
what a Task's step does with a future it is given, and nothing else: the coroutine waits on
asyncio futures (or yields bare to let the loop turn), is resumed from the future's done
callback, and is cancelled the way a Task is, by cancelling the future it waits on.

What it does not do: nothing can await it, and `asyncio.current_task()` is None inside it,
so code that needs a task of its own (asyncio.timeout, TaskGroup) must not run in a call;
the data plane only awaits futures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class Resumed:
    """A coroutine that already ran up to `suspended`, driven on by its futures' callbacks."""

    __slots__ = ("_cancel_message", "_coroutine", "_done", "_loop", "_waiting")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        coroutine: Coroutine[Any, Any, None],
        suspended: Any,
    ) -> None:
        self._coroutine = coroutine
        self._loop = loop
        self._waiting: asyncio.Future[Any] | None = None
        self._cancel_message: str | None = None  # asked for, not yet delivered
        self._done = False
        self._wait(suspended)

    def done(self) -> bool:
        """True once the coroutine returned or raised."""
        return self._done

    def cancel(self, message: str) -> None:
        """Raise CancelledError(message) in the coroutine where it waits, as Task.cancel does.

        The future it waits on is cancelled, so its producer sees nobody wants the result;
        if that future is already done, the cancellation is delivered on the resumption
        instead of the result.
        """
        if self._done:
            return
        self._cancel_message = message
        if self._waiting is not None:
            self._waiting.cancel(message)

    def _wait(self, suspended: Any) -> None:
        if getattr(suspended, "_asyncio_future_blocking", False):
            suspended._asyncio_future_blocking = False
            self._waiting = suspended
            suspended.add_done_callback(self._wake)
        elif suspended is None:  # a bare yield: asyncio.sleep(0)
            self._loop.call_soon(self._wake, None)
        else:
            self._done = True
            self._coroutine.close()
            raise RuntimeError(f"a gRPC call yielded {suspended!r}, not an asyncio future")

    def _wake(self, future: asyncio.Future[Any] | None) -> None:
        self._waiting = None
        message, self._cancel_message = self._cancel_message, None
        try:
            if message is not None and (future is None or not future.cancelled()):
                suspended = self._coroutine.throw(asyncio.CancelledError(message))
            else:
                # The future's own __await__ returns its result or raises its exception
                # (CancelledError with our message when we cancelled it).
                suspended = self._coroutine.send(None)
        except StopIteration:
            self._done = True
            return
        except BaseException:
            self._done = True
            raise
        self._wait(suspended)
