"""What the tray shows, decided without Qt: agent answers in, state + text keys + menu out.

The Qt layer (gui/app.py and friends) only renders a ``TrayView``; everything that decides -
which state wins, what the tooltip says, which menu entries are enabled, whether an answer is
acceptable - lives here and is tested without a display. Text is carried as keys (``Text``)
that gui/texts.py translates, so this module holds no user-facing strings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from agent.localchannel import ops
from agent.localchannel.client import ERR_UNTRUSTED_SERVER, AgentClient, AgentError, AgentUnavailable


class TrayState(StrEnum):
    PROTECTED = "protected"
    ATTENTION = "attention"
    HQ_UNREACHABLE = "hq_unreachable"
    AGENT_NOT_RUNNING = "agent_not_running"
    NOT_SIGNED_IN = "not_signed_in"


class StatusFormatError(ValueError):
    """The agent's status answer does not have the documented shape (ops.StatusResult)."""


@dataclass(frozen=True)
class Text:
    """A translatable message: a key from gui/texts.py and the values for its %1, %2..."""

    key: str
    args: tuple[str, ...] = ()


# --- agent answers, checked ---------------------------------------------------------------------


def _field(raw: Mapping[str, Any], name: str, kinds: type | tuple[type, ...], *, nullable: bool = False) -> Any:
    value = raw.get(name)
    if value is None and nullable:
        return None
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise StatusFormatError(f"field {name!r}: expected {kinds}, got a boolean")
    if not isinstance(value, kinds):
        raise StatusFormatError(f"field {name!r}: expected {kinds}{' or null' if nullable else ''}, got {value!r:.40}")
    return value


@dataclass(frozen=True)
class SessionEnd:
    """Why the agent last ended a session the staff did not end themselves (ops.LastSignout)."""

    reason: str
    at: float
    staff: str

    @classmethod
    def from_result(cls, raw: object) -> SessionEnd | None:
        if raw is None:
            return None  # none since the agent started, the staff signed out themselves, or an older agent
        if not isinstance(raw, Mapping):
            raise StatusFormatError(f"field 'last_signout': expected an object or null, got {raw!r:.40}")
        return cls(reason=_field(raw, "reason", str), at=float(_field(raw, "at", (int, float))),
                   staff=_field(raw, "staff", str))


@dataclass(frozen=True)
class AgentStatus:
    enrolled: bool
    device_id: str | None
    outlet_id: str | None
    hq_url: str | None
    hq_reachable: bool
    last_heartbeat: float | None
    spool_depth: int
    policy_version: int | None
    staff: str | None
    revoked: bool
    agent_version: str
    attention: tuple[str, ...]
    last_signout: SessionEnd | None = None

    @classmethod
    def from_result(cls, raw: Mapping[str, Any]) -> AgentStatus:
        attention = _field(raw, "attention", list)
        if not all(isinstance(code, str) for code in attention):
            raise StatusFormatError("field 'attention': expected a list of strings")
        heartbeat = _field(raw, "last_heartbeat", (int, float), nullable=True)
        return cls(
            enrolled=_field(raw, "enrolled", bool),
            device_id=_field(raw, "device_id", str, nullable=True),
            outlet_id=_field(raw, "outlet_id", str, nullable=True),
            hq_url=_field(raw, "hq_url", str, nullable=True),
            hq_reachable=_field(raw, "hq_reachable", bool),
            last_heartbeat=float(heartbeat) if heartbeat is not None else None,
            spool_depth=_field(raw, "spool_depth", int),
            policy_version=_field(raw, "policy_version", int, nullable=True),
            staff=_field(raw, "staff", str, nullable=True) or None,
            revoked=_field(raw, "revoked", bool),
            agent_version=_field(raw, "agent_version", str),
            attention=tuple(attention),
            last_signout=SessionEnd.from_result(raw.get("last_signout")),
        )


@dataclass(frozen=True)
class AlertItem:
    alert_id: str
    rule: str
    title: str
    severity: str
    category: str
    created: float
    process_name: str | None
    rows: int | None
    action: str
    state: str
    answered_at: float | None
    justification: str | None
    staff: str | None = None  # signed in when the finding happened; None: nobody (or an older agent)
    repeats: int = 0  # identical findings folded into this alert since it was raised

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> AlertItem:
        if not isinstance(raw, Mapping):
            raise StatusFormatError(f"alert: expected an object, got {raw!r:.40}")
        answered = _field(raw, "answered_at", (int, float), nullable=True)
        return cls(
            alert_id=_field(raw, "alert_id", str),
            rule=_field(raw, "rule", str),
            title=_field(raw, "title", str),
            severity=_field(raw, "severity", str),
            category=_field(raw, "category", str),
            created=float(_field(raw, "created", (int, float))),
            process_name=_field(raw, "process_name", str, nullable=True),
            rows=_field(raw, "rows", int, nullable=True),
            action=_field(raw, "action", str),
            state=_field(raw, "state", str),
            answered_at=float(answered) if answered is not None else None,
            justification=_field(raw, "justification", str, nullable=True),
            staff=_field(raw, "staff", str, nullable=True),
            repeats=_field(raw, "repeats", int, nullable=True) or 0,
        )

    @property
    def needs_justification(self) -> bool:
        return self.severity in ops.JUSTIFIED_SEVERITIES


@dataclass(frozen=True)
class AlertLists:
    pending: tuple[AlertItem, ...] = ()
    past: tuple[AlertItem, ...] = ()

    @classmethod
    def from_result(cls, raw: Mapping[str, Any]) -> AlertLists:
        pending = _field(raw, "pending", list)
        past = _field(raw, "past", list)
        return cls(tuple(AlertItem.from_dict(a) for a in pending), tuple(AlertItem.from_dict(a) for a in past))

    def ids(self) -> set[str]:
        return {alert.alert_id for alert in (*self.pending, *self.past)}


@dataclass(frozen=True)
class PollResult:
    """One look at the agent: its status and alerts, or why there is none."""

    status: AgentStatus | None = None
    alerts: AlertLists | None = None
    unavailable: bool = False  # the agent could not be reached
    error_code: str | None = None  # the agent answered with an error, or answered nonsense
    error_detail: str = ""
    at: float = field(default_factory=time.time)


def poll_agent(client: AgentClient) -> PollResult:
    """Ask for status (and the signed-in staff's alerts); never raises for agent trouble."""
    try:
        status = AgentStatus.from_result(client.call(ops.OP_STATUS))
        alerts = AlertLists.from_result(client.call(ops.OP_ALERTS)) if status.staff else None
    except AgentUnavailable as exc:
        return PollResult(unavailable=True, error_detail=str(exc))
    except AgentError as exc:
        return PollResult(error_code=exc.code, error_detail=exc.detail)
    except StatusFormatError as exc:
        return PollResult(error_code="protocol", error_detail=str(exc))
    return PollResult(status=status, alerts=alerts)


# --- the view ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrayView:
    state: TrayState
    headline: Text  # the state in words; first tooltip line, window title line
    details: tuple[Text, ...] = ()  # further tooltip lines
    status: AgentStatus | None = None
    alerts: AlertLists | None = None
    attention: tuple[str, ...] = ()
    error_detail: str = ""

    @property
    def tooltip_key(self) -> str:
        return self.headline.key

    @property
    def agent_running(self) -> bool:
        return self.status is not None

    @property
    def staff(self) -> str | None:
        return self.status.staff if self.status else None

    @property
    def pending_count(self) -> int:
        return len(self.alerts.pending) if self.alerts else 0


CONNECTING_VIEW = TrayView(TrayState.AGENT_NOT_RUNNING, Text("state.connecting"))


def attention_codes(status: AgentStatus, alerts: AlertLists | None) -> tuple[str, ...]:
    """The agent's attention codes plus what the tray can see itself, without duplicates."""
    codes = list(status.attention)
    if not status.enrolled:
        codes.append(ops.ATTN_NOT_ENROLLED)
    if status.revoked:
        codes.append(ops.ATTN_REVOKED)
    if alerts is not None and alerts.pending:
        codes.append(ops.ATTN_ALERTS_PENDING)
    return tuple(dict.fromkeys(codes))


def derive_view(poll: PollResult) -> TrayView:
    """Which state wins: agent not running > attention > HQ unreachable > not signed in > protected.

    HQ unreachable outranks "not signed in" because sign-in needs HQ: prompting for it then would
    send staff into an error.
    """
    if poll.status is None:
        return _no_status_view(poll)
    status = poll.status
    attention = attention_codes(status, poll.alerts)
    details = _detail_lines(status, poll.alerts, attention)
    if attention:
        state, headline = TrayState.ATTENTION, Text("state.attention")
    elif not status.hq_reachable:
        state, headline = TrayState.HQ_UNREACHABLE, Text("state.hq_unreachable")
    elif status.staff is None:
        state, headline = TrayState.NOT_SIGNED_IN, Text("state.not_signed_in")
    else:
        state, headline = TrayState.PROTECTED, Text("state.protected")
    return TrayView(state, headline, details, status, poll.alerts, attention)


def _no_status_view(poll: PollResult) -> TrayView:
    if poll.unavailable:
        details: tuple[Text, ...] = (Text("detail.agent_down"),)
    elif poll.error_code == ERR_UNTRUSTED_SERVER:
        details = (Text("detail.untrusted_server"),)
    else:
        details = (Text("detail.agent_error", (poll.error_code or "?",)),)
    return TrayView(TrayState.AGENT_NOT_RUNNING, Text("state.agent_not_running"), details,
                    error_detail=poll.error_detail)


def _detail_lines(status: AgentStatus, alerts: AlertLists | None, attention: Iterable[str]) -> tuple[Text, ...]:
    lines = [attention_text(code, alerts) for code in attention]
    if status.staff:
        lines.append(Text("detail.signed_in_as", (status.staff,)))
    elif status.enrolled and not status.revoked:
        lines.append(Text("detail.sign_in_hint"))
    if not status.hq_reachable and status.enrolled:
        lines.append(Text("detail.hq_unreachable"))
    return tuple(lines)


def attention_text(code: str, alerts: AlertLists | None = None) -> Text:
    if code == ops.ATTN_ALERTS_PENDING and alerts is not None:
        return Text("attention.alerts_pending_count", (str(len(alerts.pending)),))
    if code in ops.ATTENTION_CODES:
        return Text(f"attention.{code}")
    return Text("attention.unknown", (code,))


# --- the menu ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MenuEntry:
    key: str  # what the entry does: "sign_in", "quit"... ("header"/"detail" are inert lines)
    text: Text
    enabled: bool = True
    emphasized: bool = False


def menu_entries(view: TrayView) -> tuple[MenuEntry, ...]:
    """The tray menu for this view; rebuilt each time the menu opens."""
    entries = [MenuEntry("header", view.headline, enabled=False)]
    entries += [MenuEntry("detail", line, enabled=False) for line in view.details[:3]]
    status = view.status
    if status is not None:
        usable = status.enrolled and not status.revoked
        if status.staff is None:
            entries.append(MenuEntry("sign_in", Text("menu.sign_in"), enabled=usable and status.hq_reachable))
        else:
            entries.append(MenuEntry("sign_out", Text("menu.sign_out", (status.staff,))))
        ack_needed = ops.ATTN_POLICY_ACK_REQUIRED in view.attention
        entries.append(MenuEntry("policy", Text("menu.policy_required" if ack_needed else "menu.policy"),
                                 emphasized=ack_needed))
        if status.staff is not None:
            pending = view.pending_count
            text = Text("menu.alerts_pending", (str(pending),)) if pending else Text("menu.alerts")
            entries.append(MenuEntry("alerts", text, emphasized=pending > 0))
    entries.append(MenuEntry("diagnostics", Text("menu.diagnostics")))
    entries.append(MenuEntry("refresh", Text("menu.refresh")))
    entries.append(MenuEntry("quit", Text("menu.quit")))
    return tuple(entries)


# --- dialog rules ------------------------------------------------------------------------------


def signin_problem(staff: str, password: str) -> Text | None:
    if not staff.strip():
        return Text("signin.staff_missing")
    if not ops.valid_staff_id(staff.strip()):
        return Text("signin.staff_invalid")
    if not password:
        return Text("signin.password_missing")
    return None


def can_acknowledge(scrolled_to_end: bool, typed_staff: str, expected_staff: str | None) -> bool:
    """The acknowledge button: the policy read to its end and the staff's own id typed."""
    return scrolled_to_end and bool(expected_staff) and typed_staff.strip() == expected_staff


def answer_problem(alert: AlertItem, action: str, justification: str) -> Text | None:
    if action not in ops.ANSWER_ACTIONS:
        return Text("alerts.choose_action")
    if ops.justification_problem(alert.severity, action, justification) is None:
        return None
    if len(justification.strip()) > ops.MAX_JUSTIFICATION_CHARS:
        return Text("alerts.justification_too_long", (str(ops.MAX_JUSTIFICATION_CHARS),))
    return Text("alerts.justification_required", (str(ops.MIN_JUSTIFICATION_CHARS),))


def new_alerts(seen: set[str], alerts: AlertLists) -> tuple[list[AlertItem], list[AlertItem]]:
    """Alerts not seen before: (to notify about, to ask an answer for)."""
    fresh = [a for a in (*alerts.pending, *alerts.past) if a.alert_id not in seen]
    ask = [a for a in fresh if a.action == "require_ack" and a.state == "pending"]
    notify = [a for a in fresh if a.action == "notify"]
    return notify, ask


# --- sessions the agent ended ---------------------------------------------------------------------

# Why a session ended (ops.SIGNOUT_*, "hq:" + HQ's code) -> the text telling staff (%1: the staff
# id) and what the tray opens next. The sign-in form opens, as for an expired session, where
# signing in again is the way on; not where it would fail (HQ suspended the staff, revoked the
# PC) or is not wanted (the outlet has closed, the OS user logged off).
SIGNOUT_NOTICES: dict[str, tuple[str, str | None]] = {
    ops.SIGNOUT_IDLE: ("signout.idle", "sign_in"),
    ops.SIGNOUT_SCREEN_LOCKED: ("signout.screen_locked", "sign_in"),
    ops.SIGNOUT_SHIFT_END: ("signout.shift_end", None),
    ops.SIGNOUT_LOGOFF: ("signout.logoff", None),
    ops.SIGNOUT_AGENT_STOPPED: ("signout.agent_stopped", None),
    "hq:expired_token": ("signout.hq_expired", "sign_in"),
    "hq:bad_token": ("signout.hq_expired", "sign_in"),
    "hq:malformed_token": ("signout.hq_expired", "sign_in"),
    "hq:wrong_device": ("signout.hq_expired", "sign_in"),
    "hq:signed_out": ("signout.hq_signed_out", "sign_in"),
    "hq:staff_suspended": ("signout.hq_staff_suspended", None),
    "hq:staff_disabled": ("signout.hq_staff_disabled", None),
    "hq:wrong_outlet": ("signout.hq_wrong_outlet", None),
    "hq:device_revoked": ("signout.hq_device_revoked", None),
    "hq:unknown_device": ("signout.hq_device_revoked", None),
}


@dataclass(frozen=True)
class SignoutNotice:
    text: Text
    followup: str | None  # a MenuEntry key to open ("sign_in"), or None


def signout_notice(seen: SessionEnd | None, status: AgentStatus) -> SignoutNotice | None:
    """What to tell staff when the agent has ended a session since ``seen`` (its last_signout at the
    previous look); None when there is nothing new, or someone is signed in again already."""
    end = status.last_signout
    if end is None or end == seen or status.staff is not None:
        return None
    known = SIGNOUT_NOTICES.get(end.reason)
    if known is None:
        return SignoutNotice(Text("signout.other", (end.staff, end.reason)), None)
    key, followup = known
    return SignoutNotice(Text(key, (end.staff,)), followup)


# --- agent errors ------------------------------------------------------------------------------

# Errors that mean the tray must open something (a MenuEntry key), not only explain them.
ERROR_FOLLOWUPS: dict[str, str] = {
    ops.ERR_POLICY_ACK_REQUIRED: "policy",
    ops.ERR_SESSION_EXPIRED: "sign_in",
    ops.ERR_NOT_SIGNED_IN: "sign_in",  # the session ended (HQ, idle, shift end) while a dialog was open
}


def error_followup(code: str) -> str | None:
    return ERROR_FOLLOWUPS.get(code)


def staff_in_detail(detail: str) -> str | None:
    """The staff id an already_signed_in detail starts with ("S002 is signed in here; sign out first").

    The tray's status may be a poll behind (another session signed in meanwhile), so the agent's
    own answer is the better source; anything that is not a valid staff id is ignored.
    """
    first = detail.split(" ", 1)[0]
    return first if "signed in" in detail and ops.valid_staff_id(first) else None


# --- diagnostics -------------------------------------------------------------------------------


def _stamp(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def diagnostics_fields(view: TrayView, address: str, tray_version: str) -> dict[str, Any]:
    """What IT needs in a ticket: machine-readable keys, no customer data, no staff password."""
    status = view.status
    fields: dict[str, Any] = {
        "tray_state": str(view.state),
        "tray_version": tray_version,
        "agent_address": address,
        "agent_running": status is not None,
    }
    if status is None:
        fields["agent_error"] = view.error_detail
        return fields
    fields.update(
        agent_version=status.agent_version,
        enrolled=status.enrolled,
        revoked=status.revoked,
        device_id=status.device_id,
        outlet_id=status.outlet_id,
        hq_url=status.hq_url,
        hq_reachable=status.hq_reachable,
        last_heartbeat=_stamp(status.last_heartbeat),
        spool_depth=status.spool_depth,
        policy_version=status.policy_version,
        staff=status.staff,
        attention=list(view.attention),
    )
    return fields


def diagnostics_text(view: TrayView, address: str, tray_version: str, *, now: float | None = None) -> str:
    """The "copy diagnostics" text: one ``key: value`` line each, stable English keys for IT."""
    fields = {"collected_at": _stamp(time.time() if now is None else now),
              **diagnostics_fields(view, address, tray_version)}
    return "\n".join(f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in fields.items()) + "\n"
