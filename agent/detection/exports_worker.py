"""Scans each file the export sensor saw settle, off the sensor's threads.

The thread blocks on its inbox with no timeout; `wake` (called at stop) puts None there. The
scanner and its readers are imported with the first file: an idle service never needs them.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path

from agent.findings import Finding
from agent.policy import CurrentPolicy
from agent.sensors.observations import FileWritten

log = logging.getLogger(__name__)


ScanInbox = queue.Queue[FileWritten | None]


class ExportScanner:
    def __init__(self, inbox: ScanInbox, *, policy: CurrentPolicy,
                 respond: Callable[[Finding], None]) -> None:
        self.inbox = inbox
        self._policy = policy
        self._respond = respond
        self.scanned = 0

    def wake(self) -> None:
        with contextlib.suppress(queue.Full):  # a full inbox keeps the thread awake anyway
            self.inbox.put_nowait(None)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            written = self.inbox.get()
            if written is None:
                continue
            from agent.exports.scan import scan_file  # late: see the module docstring

            finding = scan_file(Path(written.path), thresholds=self._policy.body.thresholds,
                                removable=written.removable, process=written.process)
            self.scanned += 1
            if finding is not None:
                self._respond(finding)
