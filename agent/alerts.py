"""Alerts staff see in the tray: made from findings, answered by staff, reported to HQ via the spool.

An alert carries the rule, the program and the time — never a file name or path, since those
can carry customer data (DESIGN.md "Privacy").

An alert belongs to the staff member signed in when its finding happened (``staff``; None when
nobody was): only they see and answer it, so S2 is never asked to justify what happened under S1.
Alerts raised while nobody was signed in go to whoever signs in next, since someone must answer
them. An ``alerts.json`` of an older version has no ``staff``: its alerts count as unattributed.

The file only carries the book across restarts: a write the disk refuses (full, failing) is logged
once and skipped, the alerts stay in memory and the next change that fits writes all of them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from agent.events import PRIORITY_HIGH, Event
from agent.findings import Finding
from agent.localchannel import ops
from agent.localchannel.ops import Alert, justification_problem
from agent.redact import redact
from agent.utf8 import utf8_safe

log = logging.getLogger(__name__)

ALERTS_FILE = "alerts.json"
MAX_KEPT = 200


class AlertError(ValueError):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _nobody() -> str | None:
    return None


def visible_to(alert: Alert, staff: str | None) -> bool:
    """Whether ``staff`` (None: nobody signed in) is shown and may answer ``alert``: their own alerts
    and those raised while nobody was signed in (someone has to answer those), never a colleague's."""
    owner = alert.get("staff")
    return owner is None or owner == staff


class AlertBook:
    def __init__(self, state_dir: Path, put_event: Any, *, staff: Callable[[], str | None] = _nobody) -> None:
        """``staff``: who is signed in right now (the binding manager's); read when a finding arrives."""
        self._path = state_dir / ALERTS_FILE
        self._put_event = put_event
        self._signed_in = staff
        self._lock = threading.Lock()
        self._alerts: list[Alert] = self._load()
        self._failing = False

    def _load(self) -> list[Alert]:
        try:
            data = json.loads(self._path.read_text("utf-8"))
        except (OSError, ValueError):
            return []
        if not isinstance(data, list):
            return []
        return [cast(Alert, a) for a in data if isinstance(a, dict) and "alert_id" in a]

    def _save(self) -> None:
        tmp = self._path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(self._alerts[-MAX_KEPT:], ensure_ascii=False), "utf-8")
            os.replace(tmp, self._path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            if not self._failing:
                log.warning("%s: cannot save alerts (%s); keeping them in memory until a save succeeds",
                            self._path, exc)
            self._failing = True
            return
        if self._failing:
            log.warning("%s: alerts saved again", self._path)
        self._failing = False

    def add(self, finding: Finding, action: str) -> Alert:
        """A tray alert for a finding; `action` is `notify` or `require_ack` (policy's `responses`)."""
        alert = self._make(finding, action, self._signed_in())
        with self._lock:
            self._keep(alert)
        return alert

    def _make(self, finding: Finding, action: str, staff: str | None) -> Alert:
        rows = finding.fields.get("rows")
        name = finding.fields.get("process.name")
        alert: Alert = {
            "alert_id": str(uuid.uuid4()), "rule": finding.rule, "title": utf8_safe(finding.title),
            "severity": finding.severity,  # type: ignore[typeddict-item]
            "category": finding.category, "created": finding.observed_at,
            "process_name": utf8_safe(name) if isinstance(name, str) else None,
            "rows": rows if isinstance(rows, int) else None,
            "action": action,  # type: ignore[typeddict-item]
            "state": "pending" if action == "require_ack" else "notified",
            "answered_at": None, "justification": None, "repeats": 0, "staff": staff,
        }
        return alert

    def _keep(self, alert: Alert) -> None:
        self._alerts.append(alert)
        self._alerts = self._alerts[-MAX_KEPT:]
        self._save()

    def fold(self, finding: Finding) -> None:
        """A repeat of a finding already reported: counted on its newest alert, not a new one.

        Unless that alert belongs to someone else: a tool S1 left behind and S2 starts again is
        S2's to answer for, so S2 gets an alert of their own (with the earlier alert's action).
        """
        name = finding.fields.get("process.name")
        name = utf8_safe(name) if isinstance(name, str) else None
        staff = self._signed_in()
        with self._lock:
            alert = next((a for a in reversed(self._alerts)
                          if a["rule"] == finding.rule and a["process_name"] == name), None)
            if alert is None:
                return
            if alert.get("staff") != staff:
                self._keep(self._make(finding, alert["action"], staff))
                return
            alert["repeats"] = alert.get("repeats", 0) + 1
            self._save()

    def listing(self, staff: str | None = None) -> dict[str, list[Alert]]:
        """What ``staff`` sees in the tray (None: nobody is signed in), see ``visible_to``."""
        with self._lock:
            shown = [a for a in self._alerts if visible_to(a, staff)]
        pending = [a for a in shown if a["state"] == "pending"]
        past = [a for a in reversed(shown) if a["state"] != "pending"]
        return {"pending": pending, "past": past}

    def pending_count(self, staff: str | None = None) -> int:
        """Alerts waiting for ``staff``'s answer; with nobody signed in, the unattributed ones."""
        with self._lock:
            return sum(1 for a in self._alerts if a["state"] == "pending" and visible_to(a, staff))

    def answer(self, alert_id: str, action: str, justification: str, *, staff: str | None) -> Alert:
        """``staff`` answers (the one signed in now): only their own alerts or unattributed ones."""
        with self._lock:
            alert = next((a for a in self._alerts if a["alert_id"] == alert_id), None)
            if alert is None:
                raise AlertError(ops.ERR_UNKNOWN_ALERT, f"no alert {alert_id}")
            if staff is None:
                # An answer nobody can be held to is worth nothing to HQ.
                raise AlertError(ops.ERR_NOT_SIGNED_IN, "sign in before answering an alert")
            if not visible_to(alert, staff):
                raise AlertError(ops.ERR_STAFF_MISMATCH,
                                 "this alert was raised while another staff member was signed in")
            problem = justification_problem(alert["severity"], action, justification)
            if problem:
                raise AlertError(ops.ERR_JUSTIFICATION_REQUIRED, problem)
            alert["state"] = "acknowledged" if action == "acknowledge" else "explained"
            alert["answered_at"] = time.time()
            # Staff write what they like; a customer's number in an explanation must not reach HQ.
            alert["justification"] = redact(justification.strip()) or None
            self._save()
            answered = dict(alert)
        self._put_event(Event("alert.answered", {
            "alert_id": alert_id, "rule": answered["rule"], "severity": answered["severity"], "action": action,
            "justification": answered["justification"], "alert_staff": answered.get("staff"), "staff": staff},
            priority=PRIORITY_HIGH))
        return answered  # type: ignore[return-value]
