"""What the service answers on the local channel (ops in agent/localchannel/ops.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from agent import __version__
from agent.alerts import AlertBook, AlertError
from agent.binding.manager import BindingError, BindingManager
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
                 alerts: AlertBook, staff: Callable[[], str | None], binding: BindingManager | None = None) -> None:
        self._state_dir = state_dir
        self._status = status
        self._spool = spool
        self._policy = policy
        self._alerts = alerts
        self._staff = binding.staff if binding is not None else staff
        self._binding = binding

    def table(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            ops.OP_STATUS: self.status,
            ops.OP_SIGNIN: self.signin,
            ops.OP_SIGNOUT: self.signout,
            ops.OP_POLICY_TEXT: self.policy_text,
            ops.OP_ACKNOWLEDGE_POLICY: self.acknowledge_policy,
            ops.OP_ALERTS: self.alerts,
            ops.OP_ANSWER_ALERT: self.answer_alert,
            ops.OP_PROOF: self.proof,
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
        if self._binding is not None:
            attention += self._binding.attention()
        staff = self._staff()
        # Only what this staff member (or, with nobody signed in, whoever signs in next) must answer.
        if self._alerts.pending_count(staff):
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
            "staff": staff,
            "revoked": bool(snapshot.get("revoked")),
            "agent_version": __version__,
            "attention": attention,
            "last_signout": self._binding.last_signout() if self._binding is not None else None,
        }

    def _manager(self) -> BindingManager:
        if self._binding is None:
            raise ChannelError(ops.ERR_NOT_AVAILABLE, "session binding is not running in this agent")
        return self._binding

    def signin(self, args: dict[str, Any]) -> dict[str, Any]:
        staff = ops.require_str(args, "staff").strip()
        password = ops.require_str(args, "password")
        with _channel_errors():
            return self._manager().signin(staff, password)

    def signout(self, args: dict[str, Any]) -> dict[str, Any]:
        with _channel_errors():
            return self._manager().signout(ops.SIGNOUT_STAFF)

    def proof(self, args: dict[str, Any]) -> dict[str, Any]:
        method = ops.require_str(args, "method")
        url = ops.require_str(args, "url")
        with _channel_errors():
            return self._manager().proof(method, url)

    def policy_text(self, args: dict[str, Any]) -> dict[str, Any]:
        text = dict(default_policy_text())
        text["version"] = self._policy.version
        return text

    def acknowledge_policy(self, args: dict[str, Any]) -> dict[str, Any]:
        staff = self._staff()
        if staff is None:
            raise ChannelError(ops.ERR_NOT_SIGNED_IN, "sign in before acknowledging the policy")
        claimed = ops.require_str(args, "staff")
        policy_hash = ops.require_str(args, "policy_hash")
        typed = ops.require_str(args, "typed_staff", allow_empty=True)
        with _channel_errors():
            return self._manager().acknowledge(claimed, policy_hash, typed)

    def alerts(self, args: dict[str, Any]) -> dict[str, Any]:
        return dict(self._alerts.listing(self._staff()))

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


@contextmanager
def _channel_errors() -> Iterator[None]:
    """Binding refusals reach the client as channel errors with the same code."""
    try:
        yield
    except BindingError as exc:
        raise ChannelError(exc.code, exc.detail) from None
