"""A deadline for awaiting a request body, cheap enough to sit on every request.

Every body is read under a deadline (a stranger must not hold a task for ever by trickling bytes),
so its cost is paid by every heartbeat and every verify. ``anyio.fail_after`` costs ~13 µs a
request (a cancel scope and its task bookkeeping) and ``asyncio.timeout`` ~6; this is one timer
on the running loop that cancels the waiting task, ~2 µs. On exit it turns exactly its own
cancellation into TimeoutError, as ``asyncio.timeout`` does (Python 3.11's uncancel contract), so
a cancellation from anyone else (shutdown, an enclosing scope) passes through untouched.

HQ serves on asyncio: uvicorn, and anyio's asyncio backend in the in-process tests.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class Deadline:
    __slots__ = ("_cancelling", "_delay_s", "_handle", "_task", "expired")

    def __init__(self, delay_s: float) -> None:
        self._delay_s = delay_s
        self.expired = False

    def __enter__(self) -> Deadline:
        # The loop looked up once: each lookup is a getpid() system call (fork detection).
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("Deadline must be used inside an asyncio task")
        self._task = task
        self._cancelling = task.cancelling()
        self._handle = loop.call_later(self._delay_s, self._expire)
        return self

    def _expire(self) -> None:
        self.expired = True
        self._task.cancel()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._handle.cancel()
        # Ours only if no one else asked to cancel the task meanwhile (their request stays).
        if self.expired and self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc
