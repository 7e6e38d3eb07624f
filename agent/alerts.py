"""Alerts staff see in the tray: made from findings, answered by staff, reported to HQ via the spool.

An alert carries the rule, the program and the time — never a file name or path, since those
can carry customer data (DESIGN.md "Privacy").
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, cast

from agent.events import PRIORITY_HIGH, Event
from agent.findings import Finding
from agent.localchannel.ops import Alert, justification_problem

ALERTS_FILE = "alerts.json"
MAX_KEPT = 200


def action_for(severity: str) -> str | None:
    """Default response per severity until policy carries actions: answer high ones, show medium ones."""
    if severity in ("high", "critical"):
        return "require_ack"
    if severity == "medium":
        return "notify"
    return None


class AlertError(ValueError):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class AlertBook:
    def __init__(self, state_dir: Path, put_event: Any) -> None:
        self._path = state_dir / ALERTS_FILE
        self._put_event = put_event
        self._lock = threading.Lock()
        self._alerts: list[Alert] = self._load()

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
        tmp.write_text(json.dumps(self._alerts[-MAX_KEPT:], ensure_ascii=False), "utf-8")
        os.replace(tmp, self._path)

    def add(self, finding: Finding) -> Alert | None:
        action = action_for(finding.severity)
        if action is None:
            return None
        rows = finding.fields.get("rows")
        alert: Alert = {
            "alert_id": str(uuid.uuid4()), "rule": finding.rule, "title": finding.title,
            "severity": finding.severity,  # type: ignore[typeddict-item]
            "category": finding.category, "created": finding.observed_at,
            "process_name": finding.fields.get("process.name"), "rows": rows if isinstance(rows, int) else None,
            "action": action,  # type: ignore[typeddict-item]
            "state": "pending" if action == "require_ack" else "notified",
            "answered_at": None, "justification": None,
        }
        with self._lock:
            self._alerts.append(alert)
            self._alerts = self._alerts[-MAX_KEPT:]
            self._save()
        return alert

    def listing(self) -> dict[str, list[Alert]]:
        with self._lock:
            pending = [a for a in self._alerts if a["state"] == "pending"]
            past = [a for a in reversed(self._alerts) if a["state"] != "pending"]
        return {"pending": pending, "past": past}

    def pending_count(self) -> int:
        with self._lock:
            return sum(1 for a in self._alerts if a["state"] == "pending")

    def answer(self, alert_id: str, action: str, justification: str, *, staff: str | None) -> Alert:
        with self._lock:
            alert = next((a for a in self._alerts if a["alert_id"] == alert_id), None)
            if alert is None:
                raise AlertError("unknown_alert", f"no alert {alert_id}")
            problem = justification_problem(alert["severity"], action, justification)
            if problem:
                raise AlertError("justification_required", problem)
            alert["state"] = "acknowledged" if action == "acknowledge" else "explained"
            alert["answered_at"] = time.time()
            alert["justification"] = justification.strip() or None
            self._save()
            answered = dict(alert)
        self._put_event(Event("alert.answered", {
            "alert_id": alert_id, "rule": answered["rule"], "severity": answered["severity"], "action": action,
            "justification": answered["justification"], "staff": staff}, priority=PRIORITY_HIGH))
        return answered  # type: ignore[return-value]
