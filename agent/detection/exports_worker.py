"""Scans each file the export sensor saw settle, off the sensor's threads."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path

from agent.exports.scan import scan_file
from agent.findings import Finding
from agent.policy import CurrentPolicy
from agent.sensors.observations import FileWritten

log = logging.getLogger(__name__)


class ExportScanner:
    def __init__(self, inbox: queue.Queue[FileWritten], *, policy: CurrentPolicy,
                 respond: Callable[[Finding], None]) -> None:
        self.inbox = inbox
        self._policy = policy
        self._respond = respond
        self.scanned = 0

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                written = self.inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            finding = scan_file(Path(written.path), thresholds=self._policy.body.thresholds,
                                removable=written.removable, process=written.process)
            self.scanned += 1
            if finding is not None:
                self._respond(finding)
