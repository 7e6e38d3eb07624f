"""Respond to a finding: fold repeats, spool it for HQ, and take the actions policy names for its rule.

`alert` (always): the finding goes to HQ through the spool. `notify` / `require_ack`: a staff
alert in the tray. `terminate`: the process tree ends, in a thread of its own (it waits up to a few
seconds for the program to go), and the outcome is an event of its own. `suspend_binding` is
HQ's to carry out: HQ reads its own policy when the finding arrives (hq/sharing/tracker.py).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable

from agent.alerts import AlertBook
from agent.detection.actions import ResponsePolicy
from agent.detection.dedupe import Dedupe
from agent.detection.terminate import Termination, terminate_tree
from agent.events import PRIORITY_HIGH, Event
from agent.findings import Finding
from agent.spool import Spool

log = logging.getLogger(__name__)

ACTIONS_FIELD = "response.actions"
Terminator = Callable[[int, float | None], Termination]


class Responder:
    def __init__(self, spool: Spool, alerts: AlertBook, dedupe: Dedupe | None = None, *,
                 responses: Callable[[], ResponsePolicy] = ResponsePolicy,
                 terminate: Terminator = terminate_tree) -> None:
        self._spool = spool
        self._alerts = alerts
        self._dedupe = dedupe or Dedupe()
        self._responses = responses
        self._terminate = terminate

    def __call__(self, finding: Finding) -> None:
        actions = self._responses().actions_for(finding.rule, finding.severity, finding.category)
        admitted = self._dedupe.admit(finding)
        if admitted is None:
            self._alerts.fold(finding)
            if "terminate" in actions:  # a tool relaunched in a loop is ended every time
                self._start_termination(finding, report=False)
            return
        admitted = dataclasses.replace(admitted, fields={**admitted.fields, ACTIONS_FIELD: list(actions)})
        # The rule and category only: paths and command lines may carry customer data, the log must not.
        log.info("finding %s (%s, %s): %s", admitted.rule, admitted.category, admitted.severity, ",".join(actions))
        self._spool.put(admitted.to_event())
        staff_action = next((a for a in actions if a in ("require_ack", "notify")), None)
        if staff_action is not None:
            self._alerts.add(admitted, staff_action)
        if "terminate" in actions:
            self._start_termination(admitted)

    def _start_termination(self, finding: Finding, *, report: bool = True) -> None:
        pid, started = finding.fields.get("process.pid"), finding.fields.get("process.start")
        if not isinstance(pid, int):
            log.warning("rule %s asks to terminate, but its finding names no process", finding.rule)
            return
        threading.Thread(target=self._terminate_and_report, name="tg-terminate", daemon=True,
                         args=(finding, pid, started if isinstance(started, float) else None, report)).start()

    def _terminate_and_report(self, finding: Finding, pid: int, started: float | None, report: bool) -> None:
        done = self._terminate(pid, started)
        # Always logged (the issue asks for it), with pids and the rule: nothing a customer typed.
        log.warning("terminate for rule %s: %s (pids %s)", finding.rule, done.outcome, list(done.pids) or [pid])
        if not report:
            return  # a folded repeat: the log has it, HQ has the finding's count
        self._spool.put(Event("response.terminated", {
            "rule": finding.rule, "category": finding.category, "process.pid": pid,
            "process.name": finding.fields.get("process.name"), "outcome": done.outcome, "pids": list(done.pids),
        }, priority=PRIORITY_HIGH))
