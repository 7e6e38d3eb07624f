"""What the service answers on the local channel (ops in agent/localchannel/ops.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from agent import __version__
from agent.alerts import AlertBook, AlertError
from agent.enrollment import Enrollment, EnrollmentError
from agent.localchannel import ops
from agent.localchannel.default_policy import default_policy_text
from agent.localchannel.protocol import ChannelError
from agent.policy import CurrentPolicy
from agent.spool import Spool
from agent.status_file import StatusFile

BACKLOG_AGE_S = 3600


class ChannelHandlers:
    def __init__(self, *, state_dir: Any, status: StatusFile, spool: Spool, policy: CurrentPolicy,
                 alerts: AlertBook, staff: Callable[[], str | None]) -> None:
        self._state_dir = state_dir
        self._status = status
        self._spool = spool
        self._policy = policy
        self._alerts = alerts
        self._staff = staff

    def table(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            ops.OP_STATUS: self.status,
            ops.OP_SIGNIN: self.not_yet,
            ops.OP_SIGNOUT: self.not_yet,
            ops.OP_POLICY_TEXT: self.policy_text,
            ops.OP_ACKNOWLEDGE_POLICY: self.acknowledge_policy,
            ops.OP_ALERTS: self.alerts,
            ops.OP_ANSWER_ALERT: self.answer_alert,
        }

    def _enrollment(self) -> Enrollment | None:
        try:
            return Enrollment.load(self._state_dir)
        except EnrollmentError:
            return None

    def status(self, args: dict[str, Any]) -> dict[str, Any]:
        snapshot = self._status.snapshot()
        enrollment = self._enrollment()
        attention = []
        if enrollment is None:
            attention.append(ops.ATTN_NOT_ENROLLED)
        if snapshot.get("revoked"):
            attention.append(ops.ATTN_REVOKED)
        if self._alerts.pending_count():
            attention.append(ops.ATTN_ALERTS_PENDING)
        last = snapshot.get("last_heartbeat")
        if self._spool.depth() and (last is None or time.time() - last > BACKLOG_AGE_S):
            attention.append(ops.ATTN_SPOOL_BACKLOG)
        return {
            "enrolled": enrollment is not None,
            "device_id": enrollment.device_id if enrollment else None,
            "outlet_id": enrollment.outlet_id if enrollment else None,
            "hq_url": enrollment.hq_url if enrollment else None,
            "hq_reachable": bool(snapshot.get("hq_reachable")),
            "last_heartbeat": last,
            "spool_depth": self._spool.depth(),
            "policy_version": self._policy.version,
            "staff": self._staff(),
            "revoked": bool(snapshot.get("revoked")),
            "agent_version": __version__,
            "attention": attention,
        }

    def not_yet(self, args: dict[str, Any]) -> dict[str, Any]:
        raise ChannelError(ops.ERR_NOT_AVAILABLE, "staff sign-in arrives with session binding (issue 5)")

    def policy_text(self, args: dict[str, Any]) -> dict[str, Any]:
        text = dict(default_policy_text())
        text["version"] = self._policy.version
        return text

    def acknowledge_policy(self, args: dict[str, Any]) -> dict[str, Any]:
        staff = self._staff()
        if staff is None:
            raise ChannelError(ops.ERR_NOT_SIGNED_IN, "sign in before acknowledging the policy")
        raise ChannelError(ops.ERR_NOT_AVAILABLE, "policy acknowledgement arrives with session binding (issue 5)")

    def alerts(self, args: dict[str, Any]) -> dict[str, Any]:
        return dict(self._alerts.listing())

    def answer_alert(self, args: dict[str, Any]) -> dict[str, Any]:
        alert_id = ops.require_str(args, "alert_id")
        action = ops.require_choice(args, "action", ops.ANSWER_ACTIONS)
        justification = args.get("justification", "")
        if not isinstance(justification, str):
            raise ChannelError(ops.ERR_INVALID_ARGUMENT, "justification: expected a string")
        try:
            alert = self._alerts.answer(alert_id, action, justification, staff=self._staff())
        except AlertError as exc:
            raise ChannelError(exc.code, exc.detail) from exc
        return {"alert_id": alert["alert_id"], "state": alert["state"],
                "queued": not self._status.snapshot().get("hq_reachable", False)}
