"""The agent side of GUI tests: handlers with controlled answers, served by a REAL LocalChannelServer.

``FakeAgent`` is not a mock of the client: its handlers run behind the production local channel
(Unix socket, wire format, threads), so the tray's AgentClient is exercised for real; only what
the handlers answer is under the test's control.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QWidget

from agent.localchannel import ops
from agent.localchannel.default_policy import default_policy_text
from agent.localchannel.protocol import ChannelError

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "gui"


def make_status(**changes: Any) -> dict[str, Any]:
    status: dict[str, Any] = {
        "enrolled": True,
        "device_id": "dev-7f3a",
        "outlet_id": "OUT-021",
        "hq_url": "https://hq.example.test:8443",
        "hq_reachable": True,
        "last_heartbeat": time.time() - 4,
        "spool_depth": 0,
        "policy_version": 3,
        "staff": "S001",
        "revoked": False,
        "agent_version": "0.1.0",
        "attention": [],
        "last_signout": None,
    }
    status.update(changes)
    return status


def make_alert(alert_id: str, *, severity: str = "high", action: str = "require_ack", state: str = "pending",
               title: str = "Remote-control tool started", process_name: str | None = "anydesk.exe",
               rows: int | None = None) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "rule": "remote_control_tool",
        "title": title,
        "severity": severity,
        "category": "remote_access",
        "created": time.time() - 60,
        "process_name": process_name,
        "rows": rows,
        "action": action,
        "state": state,
        "answered_at": None,
        "justification": None,
    }


class FakeAgent:
    """What the agent answers, set by the test; every call recorded (arguments included)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.status = make_status()
        self.alerts: dict[str, list[dict[str, Any]]] = {"pending": [], "past": []}
        self.policy: dict[str, Any] = dict(default_policy_text())
        self.signin_error: ChannelError | None = ChannelError(ops.ERR_NOT_AVAILABLE, "sign-in to HQ comes later")
        self.acknowledge_error: ChannelError | None = None
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def set_status(self, **changes: Any) -> None:
        with self.lock:
            self.status = make_status(**changes)

    def end_session(self, reason: str) -> None:
        """The agent ends the session on its own (idle, screen lock, HQ...), as BindingManager does."""
        with self.lock:
            staff = self.status["staff"]
            self.status = {**self.status, "staff": None, "attention": [],
                           "last_signout": {"reason": reason, "at": time.time(), "staff": staff}}

    def calls_of(self, op: str) -> list[dict[str, Any]]:
        with self.lock:
            return [args for name, args in self.calls if name == op]

    def handlers(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        def recorded(op: str, handler: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[..., Any]:
            def run(args: dict[str, Any]) -> dict[str, Any]:
                with self.lock:
                    self.calls.append((op, dict(args)))
                    return handler(args)

            return run

        table = {
            ops.OP_STATUS: lambda args: copy.deepcopy(self.status),
            ops.OP_SIGNIN: self._signin,
            ops.OP_SIGNOUT: self._signout,
            ops.OP_POLICY_TEXT: lambda args: dict(self.policy),
            ops.OP_ACKNOWLEDGE_POLICY: self._acknowledge,
            ops.OP_ALERTS: lambda args: copy.deepcopy(self.alerts),
            ops.OP_ANSWER_ALERT: self._answer,
        }
        return {op: recorded(op, handler) for op, handler in table.items()}

    def _signin(self, args: dict[str, Any]) -> dict[str, Any]:
        staff = ops.require_str(args, "staff")
        ops.require_str(args, "password")
        if self.signin_error is not None:
            raise self.signin_error
        self.status = {**self.status, "staff": staff, "attention": [ops.ATTN_POLICY_ACK_REQUIRED]}
        return {"staff": staff}

    def _signout(self, args: dict[str, Any]) -> dict[str, Any]:
        staff = self.status["staff"]
        # The staff's own sign-out clears last_signout, as BindingManager does.
        self.status = {**self.status, "staff": None, "attention": [], "last_signout": None}
        return {"staff": staff}

    def _acknowledge(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.acknowledge_error is not None:
            raise self.acknowledge_error
        if args.get("policy_hash") != self.policy["hash"]:
            raise ChannelError(ops.ERR_POLICY_CHANGED, "policy hash is not current")
        if args.get("typed_staff") != self.status["staff"] or args.get("staff") != self.status["staff"]:
            raise ChannelError(ops.ERR_STAFF_MISMATCH, "typed staff differs")
        attention = [code for code in self.status["attention"] if code != ops.ATTN_POLICY_ACK_REQUIRED]
        self.status = {**self.status, "attention": attention}
        return {"acknowledged_at": time.time(), "queued": not self.status["hq_reachable"]}

    def _answer(self, args: dict[str, Any]) -> dict[str, Any]:
        alert_id = ops.require_str(args, "alert_id")
        action = ops.require_choice(args, "action", ops.ANSWER_ACTIONS)
        justification = ops.require_str(args, "justification", allow_empty=True)
        match = [a for a in self.alerts["pending"] if a["alert_id"] == alert_id]
        if not match:
            raise ChannelError(ops.ERR_UNKNOWN_ALERT, alert_id)
        problem = ops.justification_problem(match[0]["severity"], action, justification)
        if problem:
            raise ChannelError(ops.ERR_JUSTIFICATION_REQUIRED, problem)
        alert = {**match[0], "state": "acknowledged" if action == "acknowledge" else "explained",
                 "answered_at": time.time(), "justification": justification}
        self.alerts = {"pending": [a for a in self.alerts["pending"] if a["alert_id"] != alert_id],
                       "past": [alert, *self.alerts["past"]]}
        return {"alert_id": alert_id, "state": alert["state"], "queued": False}


def save_screenshot(widget: QWidget, name: str, lang: str) -> Path:
    """PNG of a widget under test-artifacts/gui/, for reviewers of layout and translation."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    QCoreApplication.processEvents()
    path = ARTIFACTS / f"{name}_{lang}.png"
    assert widget.grab().save(str(path)), f"could not save {path}"
    return path
