"""The operations the agent serves on the local channel: names, argument and result shapes.

This module is the contract between the agent's handlers and its clients (tray, CLI). Every op
takes a JSON object of arguments and answers a JSON object; shapes are TypedDicts so both sides
type-check against the same definition. Errors are ``ChannelError(code, detail)`` raised by the
handler, with a code from the ``ERR_*`` constants below (or the channel's own in protocol.py).

| op                 | arguments                                   | result                      |
|--------------------|---------------------------------------------|-----------------------------|
| status             | –                                           | StatusResult                |
| signin             | SignInArgs {staff, password}                | SignInResult {staff}        |
| signout            | –                                           | SignOutResult {staff}       |
| policy_text        | –                                           | PolicyTextResult            |
| acknowledge_policy | AcknowledgePolicyArgs {staff, policy_hash,  | AcknowledgePolicyResult     |
|                    |   typed_staff}                              |   {acknowledged_at, queued} |
| alerts             | –                                           | AlertsResult {pending, past}|
| answer_alert       | AnswerAlertArgs {alert_id, action,          | AnswerAlertResult           |
|                    |   justification}                            |   {alert_id, state, queued} |
| proof              | ProofArgs {method, url}                     | ProofResult {headers,       |
|                    |                                             |   staff, expires_at}        |

Privacy: no result may carry customer data (phones, names, addresses, ID numbers, waybill
contents). Alerts say which rule, which program and when; ``detail`` strings likewise.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal, NotRequired, TypedDict

from agent.localchannel.protocol import ChannelError

OP_STATUS = "status"
OP_SIGNIN = "signin"
OP_SIGNOUT = "signout"
OP_POLICY_TEXT = "policy_text"
OP_ACKNOWLEDGE_POLICY = "acknowledge_policy"
OP_ALERTS = "alerts"
OP_ANSWER_ALERT = "answer_alert"
OP_PROOF = "proof"
ALL_OPS = (OP_STATUS, OP_SIGNIN, OP_SIGNOUT, OP_POLICY_TEXT, OP_ACKNOWLEDGE_POLICY, OP_ALERTS, OP_ANSWER_ALERT,
           OP_PROOF)

# --- error codes a handler may answer with ---------------------------------------------------
ERR_NOT_AVAILABLE = "not_available"  # the feature is not there yet (signin before session binding)
ERR_INVALID_ARGUMENT = "invalid_argument"  # detail names the field and what was expected
ERR_NOT_ENROLLED = "not_enrolled"  # this PC has no device identity at HQ yet
ERR_REVOKED = "revoked"  # HQ revoked this PC
ERR_HQ_UNREACHABLE = "hq_unreachable"  # the op needs HQ now (signin) and HQ cannot be reached
ERR_BAD_CREDENTIALS = "bad_credentials"  # staff id or password wrong (never say which)
ERR_STAFF_SUSPENDED = "staff_suspended"  # HQ suspended this staff member's sessions
ERR_NOT_SIGNED_IN = "not_signed_in"
ERR_STAFF_MISMATCH = "staff_mismatch"  # typed staff id is not the signed-in staff
ERR_POLICY_CHANGED = "policy_changed"  # acknowledged hash is not the policy now in force
ERR_UNKNOWN_ALERT = "unknown_alert"
ERR_STAFF_LOCKED = "staff_locked"  # too many wrong passwords: locked for a while or until HQ clears it
ERR_STAFF_DISABLED = "staff_disabled"  # the staff account is disabled at HQ
ERR_WRONG_OUTLET = "wrong_outlet"  # the staff member belongs to another outlet than this PC
ERR_ALREADY_SIGNED_IN = "already_signed_in"  # another staff member is signed in here: one per terminal
ERR_POLICY_ACK_REQUIRED = "policy_ack_required"  # proofs wait until the policy is acknowledged
ERR_SESSION_EXPIRED = "session_expired"  # the bound session could not be refreshed in time (HQ away)
ERR_HQ_REFUSED = "hq_refused"  # HQ refused for another reason; detail says which
ERR_JUSTIFICATION_REQUIRED = "justification_required"

# --- attention codes in StatusResult.attention -----------------------------------------------
ATTN_NOT_ENROLLED = "not_enrolled"
ATTN_REVOKED = "revoked"
ATTN_POLICY_ACK_REQUIRED = "policy_ack_required"
ATTN_ALERTS_PENDING = "alerts_pending"
ATTN_SPOOL_BACKLOG = "spool_backlog"
ATTN_CLOCK_SKEW = "clock_skew"
ATTN_SENSOR_FAILED = "sensor_failed"
ATTENTION_CODES: dict[str, str] = {
    ATTN_NOT_ENROLLED: "this PC is not enrolled with HQ",
    ATTN_REVOKED: "HQ revoked this PC; it must be re-enrolled",
    ATTN_POLICY_ACK_REQUIRED: "the signed-in staff must acknowledge the current policy",
    ATTN_ALERTS_PENDING: "alerts are waiting for the staff's answer",
    ATTN_SPOOL_BACKLOG: "events have waited long for delivery to HQ",
    ATTN_CLOCK_SKEW: "this PC's clock differs from HQ's",
    ATTN_SENSOR_FAILED: "a sensor failed and was disabled",
}

Severity = Literal["low", "medium", "high", "critical"]
AlertAction = Literal["notify", "require_ack"]
AlertState = Literal["pending", "acknowledged", "explained", "notified"]
AnswerAction = Literal["acknowledge", "explain"]
ANSWER_ACTIONS: tuple[AnswerAction, ...] = ("acknowledge", "explain")

# A written justification is required for these, and for every "explain" answer.
JUSTIFIED_SEVERITIES = frozenset({"high", "critical"})
MIN_JUSTIFICATION_CHARS = 10
MAX_JUSTIFICATION_CHARS = 2000
STAFF_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


# --- why a session ended (StatusResult.last_signout.reason) -------------------------------------
SIGNOUT_STAFF = "staff"  # the staff's own request: not reported in last_signout
SIGNOUT_IDLE = "idle"  # no input for the policy's idle_signout_s
SIGNOUT_SHIFT_END = "shift_end"  # the outlet's hours (policy) ended during the session
SIGNOUT_LOGOFF = "logoff"  # the OS user who signed in logged off
SIGNOUT_SCREEN_LOCKED = "screen_locked"  # the console screen was locked
SIGNOUT_AGENT_STOPPED = "agent_stopped"  # the service stopped (the token lives in its memory only)
SIGNOUT_HQ_PREFIX = "hq:"  # HQ refused a refresh and ended the session: "hq:" + HQ's code (e.g. hq:staff_suspended)


class LastSignout(TypedDict):
    reason: str  # a SIGNOUT_* reason, or "hq:" + HQ's refusal code; unknown ones are shown as-is
    at: float  # unix time (this PC's clock) the session ended
    staff: str  # whose session it was


class StatusResult(TypedDict):
    enrolled: bool
    device_id: str | None
    outlet_id: str | None
    hq_url: str | None
    hq_reachable: bool
    last_heartbeat: float | None  # unix time of the last heartbeat HQ accepted
    spool_depth: int  # events waiting for delivery
    policy_version: int | None
    staff: str | None  # signed-in staff id
    revoked: bool
    agent_version: str
    attention: list[str]  # ATTN_* codes; unknown codes are shown as-is
    # The latest session end the staff did not ask for (idle, shift end, screen lock, HQ...), so the
    # tray can say why nobody is signed in any more; None after a sign-out the staff asked for.
    # Missing from older agents.
    last_signout: NotRequired[LastSignout | None]


class SignInArgs(TypedDict):
    staff: str
    password: str


class SignInResult(TypedDict):
    staff: str


class SignOutResult(TypedDict):
    staff: str | None  # who was signed out, None when nobody was


class PolicyTextResult(TypedDict):
    version: int | None
    hash: str  # policy_text_hash(text_zh, text_en); what acknowledge_policy must quote
    text_zh: str
    text_en: str


class AcknowledgePolicyArgs(TypedDict):
    staff: str
    policy_hash: str
    typed_staff: str  # what the staff typed to confirm; must equal staff


class AcknowledgePolicyResult(TypedDict):
    acknowledged_at: float
    queued: bool  # True when HQ is unreachable and the signed acknowledgement waits in the spool


class Alert(TypedDict):
    alert_id: str
    rule: str
    title: str
    severity: Severity
    category: str
    created: float  # unix time of the finding
    process_name: str | None  # the tool involved, never a file name or path (may carry customer data)
    rows: int | None  # for exports: how many records, never their content
    action: AlertAction
    state: AlertState
    answered_at: float | None
    justification: str | None
    repeats: NotRequired[int]  # identical findings folded into this alert since it was raised
    # Staff signed in when the finding happened (None: nobody); only they see and answer it. Always
    # sent by this agent; missing in alerts saved by an older one, which count as unattributed.
    staff: NotRequired[str | None]


class AlertsResult(TypedDict):
    # Both lists hold only the signed-in staff's own alerts and those raised while nobody was
    # signed in (with nobody signed in: only the latter); a colleague's alerts are never listed.
    pending: list[Alert]  # require_ack alerts not yet answered
    past: list[Alert]  # answered ones and notify-only ones, newest first


class AnswerAlertArgs(TypedDict):
    alert_id: str
    action: AnswerAction
    justification: str


class AnswerAlertResult(TypedDict):
    alert_id: str
    state: AlertState
    queued: bool


class ProofArgs(TypedDict):
    method: str
    url: str  # the absolute URL of the business request the proof is for


class ProofResult(TypedDict):
    headers: dict[str, str]  # X-TG-Session and X-TG-Proof, to send with that one request
    staff: str
    expires_at: float  # unix time (this PC's clock) the session token expires unless refreshed


def policy_text_hash(text_zh: str, text_en: str) -> str:
    """sha256 over both texts, length-prefixed so no two different pairs hash alike."""
    digest = hashlib.sha256()
    for text in (text_zh, text_en):
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def justification_problem(severity: str, action: str, justification: str) -> str | None:
    """Why an alert answer is not acceptable, or None. The agent enforces this too: the tray is
    only a convenience, the rule holds for any client."""
    text = justification.strip()
    needed = action == "explain" or severity in JUSTIFIED_SEVERITIES
    if needed and len(text) < MIN_JUSTIFICATION_CHARS:
        return f"a written justification of at least {MIN_JUSTIFICATION_CHARS} characters is required"
    if len(text) > MAX_JUSTIFICATION_CHARS:
        return f"the justification is longer than {MAX_JUSTIFICATION_CHARS} characters"
    return None


def valid_staff_id(staff: str) -> bool:
    return STAFF_ID_PATTERN.fullmatch(staff) is not None


def require_str(args: dict[str, Any], name: str, *, allow_empty: bool = False) -> str:
    """Handler helper: ``args[name]`` as a string, else ChannelError(invalid_argument) naming it."""
    value = args.get(name)
    if not isinstance(value, str) or (not allow_empty and not value):
        raise ChannelError(ERR_INVALID_ARGUMENT, f"argument {name!r}: expected a non-empty string")
    return value


def require_choice(args: dict[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = args.get(name)
    if value not in choices:
        raise ChannelError(ERR_INVALID_ARGUMENT, f"argument {name!r}: expected one of {', '.join(choices)}")
    return str(value)
