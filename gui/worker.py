"""Agent calls off the GUI thread: a named polling thread and one-shot calls, reporting by signal.

A hung or absent agent must never freeze the tray. Every call runs on a worker thread with the
client's short timeout; results come back as Qt signals, which Qt queues onto the GUI thread
because the signalling objects live there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PySide6.QtCore import QObject, Signal

from agent.localchannel.client import AgentClient, AgentError, AgentUnavailable
from gui.model import PollResult, poll_agent

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL_S = 5.0


class StatusPoller(QObject):
    """Polls status every interval on thread ``tg-tray-poller``; ``refresh()`` polls at once."""

    polled = Signal(object)  # PollResult

    def __init__(self, client: AgentClient, interval_s: float = DEFAULT_POLL_INTERVAL_S,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._client = client
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tg-tray-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def refresh(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> bool:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                result = poll_agent(self._client)
            except Exception:  # a bug here must not end polling for the rest of the day
                log.exception("polling the agent failed")
                result = PollResult(error_code="internal", error_detail="tray polling failed")
            if self._stop.is_set():
                return
            self.polled.emit(result)
            self._wake.wait(self._interval_s)


class PendingCall(QObject):
    """One agent call in flight; exactly one of its signals fires, on the GUI thread."""

    succeeded = Signal(object)  # the result dict
    failed = Signal(object)  # AgentUnavailable | AgentError

    def __init__(self, op: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.op = op


class CallRunner(QObject):
    """Runs agent calls on a small pool of named threads."""

    def __init__(self, client: AgentClient, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tg-tray-call")
        self._open: set[PendingCall] = set()

    def run(self, op: str, args: dict[str, Any], on_success: Callable[[dict[str, Any]], None],
            on_failure: Callable[[Exception], None]) -> PendingCall:
        """Start ``op``; the callbacks are connected before the call starts, so none is missed."""
        call = PendingCall(op, self)
        self._open.add(call)
        call.succeeded.connect(on_success)
        call.failed.connect(on_failure)
        call.succeeded.connect(lambda _result, call=call: self._finished(call))
        call.failed.connect(lambda _error, call=call: self._finished(call))
        self._pool.submit(self._execute, call, args)
        return call

    def _execute(self, call: PendingCall, args: dict[str, Any]) -> None:
        try:
            result = self.client.call(call.op, **args)
        except (AgentUnavailable, AgentError) as exc:
            call.failed.emit(exc)
            return
        except Exception as exc:  # a bug must still end the dialog's wait
            log.exception("agent call %r failed in the tray", call.op)
            call.failed.emit(AgentError("internal", str(exc)))
            return
        call.succeeded.emit(result)

    def _finished(self, call: PendingCall) -> None:
        self._open.discard(call)
        call.deleteLater()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
