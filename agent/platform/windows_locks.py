"""Windows: screen locks as the Service Control Manager reports them to the service.

A service that accepts SERVICE_ACCEPT_SESSIONCHANGE receives SERVICE_CONTROL_SESSIONCHANGE with
WTS_SESSION_LOCK / WTS_SESSION_UNLOCK and the session id, on the SCM's control thread. That
handler must return quickly, so it only queues the notice (``notify``); a named worker thread,
asleep on the queue while nothing happens, looks the session up and tells the listener.

Started from a console instead of by the SCM, nobody sends these notices: the watch says so once.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from agent.platform.base import ScreenLockChange, ScreenLockListener, WatchStateListener
from agent.workers import Worker

log = logging.getLogger(__name__)

WTS_SESSION_LOCK = 0x7
WTS_SESSION_UNLOCK = 0x8
NOT_UNDER_SCM = "not started by the Service Control Manager, so Windows sends no session notices"

# session id -> (user name or None, remote?)
SessionLookup = Callable[[int], tuple[str | None, bool]]


class WtsLockWatch:
    def __init__(self, lookup: SessionLookup) -> None:
        self._lookup = lookup
        self._notices: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
        self._under_scm = threading.Event()
        self._worker: Worker | None = None
        self._on_change: ScreenLockListener = lambda change: None

    def attach(self) -> None:
        """Called by the service class once the SCM runs it: notices will come."""
        self._under_scm.set()

    def notify(self, event_type: int, session_id: int) -> None:
        """From the SCM's control handler: queue and return."""
        if event_type in (WTS_SESSION_LOCK, WTS_SESSION_UNLOCK):
            self._notices.put((event_type, session_id))

    # --- ScreenLockWatch ---------------------------------------------------------------------

    def start(self, on_change: ScreenLockListener, on_state: WatchStateListener) -> None:
        if not self._under_scm.is_set():
            log.warning("screen locks are not watched (staff stay signed in when the screen locks): %s",
                        NOT_UNDER_SCM)
            on_state(NOT_UNDER_SCM)
            return
        self._on_change = on_change
        self._worker = Worker("screen-lock", self._run, wake=lambda: self._notices.put(None))
        self._worker.start()
        log.info("watching session notices from the Service Control Manager for screen locks")
        on_state(None)

    def stop(self, timeout: float) -> bool:
        return self._worker.stop(timeout) if self._worker is not None else True

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            notice = self._notices.get()  # blocks; stop() puts None to wake it
            if notice is None:
                continue
            event_type, session_id = notice
            user, remote = self._lookup(session_id)
            change = ScreenLockChange(locked=event_type == WTS_SESSION_LOCK, session=str(session_id), user=user,
                                      console=not remote)
            try:
                self._on_change(change)
            except Exception:
                log.exception("screen lock listener failed on %s", change)
