"""Translatable messages behind the keys gui/model.py hands out, plus agent error codes.

Sources are English, marked with QT_TRANSLATE_NOOP so pyside6-lupdate collects them into
gui/translations/terminal_guard_zh_CN.ts; ``render`` translates at run time and fills %1, %2...
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QDateTime, QLocale

from agent.localchannel import ops
from gui.model import Text, staff_in_detail

CONTEXT = "Texts"


def QT_TRANSLATE_NOOP(context: str, source: str) -> str:
    """Marks ``source`` for pyside6-lupdate (which matches this name); translated in ``render``.
    Qt's own QT_TRANSLATE_NOOP is typed as returning object, hence this typed twin."""
    return source


MESSAGES: dict[str, str] = {
    # tray states (first tooltip line, window headline)
    "state.protected": QT_TRANSLATE_NOOP("Texts", "Terminal Guard: this PC is protected"),
    "state.attention": QT_TRANSLATE_NOOP("Texts", "Terminal Guard: needs your attention"),
    "state.hq_unreachable": QT_TRANSLATE_NOOP("Texts", "Terminal Guard: HQ unreachable, still protecting"),
    "state.agent_not_running": QT_TRANSLATE_NOOP("Texts", "Terminal Guard service is not running"),
    "state.not_signed_in": QT_TRANSLATE_NOOP("Texts", "Terminal Guard: not signed in"),
    "state.connecting": QT_TRANSLATE_NOOP("Texts", "Connecting to the Terminal Guard service…"),
    # detail lines
    "detail.signed_in_as": QT_TRANSLATE_NOOP("Texts", "Signed in as %1"),
    "detail.sign_in_hint": QT_TRANSLATE_NOOP("Texts", "Sign in here before using the business system"),
    "detail.hq_unreachable": QT_TRANSLATE_NOOP("Texts", "Events are kept on this PC and sent when HQ is back"),
    "detail.agent_down": QT_TRANSLATE_NOOP("Texts", "This PC is not protected. Please tell your IT contact."),
    "detail.agent_error": QT_TRANSLATE_NOOP("Texts", "The service answered with an error (%1)"),
    "detail.untrusted_server": QT_TRANSLATE_NOOP(
        "Texts", "A program posing as the Terminal Guard service answered. Tell IT at once."
    ),
    # attention codes (agent/localchannel/ops.py ATTN_*)
    "attention.not_enrolled": QT_TRANSLATE_NOOP("Texts", "This PC is not registered with HQ"),
    "attention.revoked": QT_TRANSLATE_NOOP("Texts", "HQ has revoked this PC; IT must register it again"),
    "attention.policy_ack_required": QT_TRANSLATE_NOOP("Texts", "Please read and acknowledge the data policy"),
    "attention.alerts_pending": QT_TRANSLATE_NOOP("Texts", "Alerts are waiting for your answer"),
    "attention.alerts_pending_count": QT_TRANSLATE_NOOP("Texts", "Alerts waiting for your answer: %1"),
    "attention.spool_backlog": QT_TRANSLATE_NOOP("Texts", "Events have not reached HQ for a long time"),
    "attention.clock_skew": QT_TRANSLATE_NOOP("Texts", "This PC's clock is wrong; tell IT"),
    "attention.sensor_failed": QT_TRANSLATE_NOOP("Texts", "Part of the protection has stopped; tell IT"),
    "attention.unknown": QT_TRANSLATE_NOOP("Texts", "Needs attention: %1"),
    # menu
    "menu.sign_in": QT_TRANSLATE_NOOP("Texts", "Sign in…"),
    "menu.sign_out": QT_TRANSLATE_NOOP("Texts", "Sign out %1"),
    "menu.policy": QT_TRANSLATE_NOOP("Texts", "Data-handling policy…"),
    "menu.policy_required": QT_TRANSLATE_NOOP("Texts", "Acknowledge the data-handling policy…"),
    "menu.alerts": QT_TRANSLATE_NOOP("Texts", "Alerts…"),
    "menu.alerts_pending": QT_TRANSLATE_NOOP("Texts", "Alerts (%1 waiting)…"),
    "menu.diagnostics": QT_TRANSLATE_NOOP("Texts", "Diagnostics…"),
    "menu.refresh": QT_TRANSLATE_NOOP("Texts", "Refresh"),
    "menu.quit": QT_TRANSLATE_NOOP("Texts", "Quit tray"),
    # dialog validation (gui/model.py)
    "signin.staff_missing": QT_TRANSLATE_NOOP("Texts", "Enter your staff ID."),
    "signin.staff_invalid": QT_TRANSLATE_NOOP(
        "Texts", "A staff ID has letters, digits, '.', '_' or '-' only (at most 64)."
    ),
    "signin.password_missing": QT_TRANSLATE_NOOP("Texts", "Enter your password."),
    "alerts.choose_action": QT_TRANSLATE_NOOP("Texts", "Choose acknowledge or explain."),
    "alerts.justification_required": QT_TRANSLATE_NOOP("Texts", "Write a justification of at least %1 characters."),
    "alerts.justification_too_long": QT_TRANSLATE_NOOP("Texts", "The justification is longer than %1 characters."),
    # severities and categories
    "severity.low": QT_TRANSLATE_NOOP("Texts", "Low"),
    "severity.medium": QT_TRANSLATE_NOOP("Texts", "Medium"),
    "severity.high": QT_TRANSLATE_NOOP("Texts", "High"),
    "severity.critical": QT_TRANSLATE_NOOP("Texts", "Critical"),
    "category.automation": QT_TRANSLATE_NOOP("Texts", "Automation tool"),
    "category.scripting": QT_TRANSLATE_NOOP("Texts", "Scripting"),
    "category.interception": QT_TRANSLATE_NOOP("Texts", "Traffic interception"),
    "category.remote_access": QT_TRANSLATE_NOOP("Texts", "Remote access"),
    "category.tunnel": QT_TRANSLATE_NOOP("Texts", "Tunnel or proxy"),
    "category.export": QT_TRANSLATE_NOOP("Texts", "Data export"),
    "category.sharing": QT_TRANSLATE_NOOP("Texts", "Account sharing"),
    "alert_state.pending": QT_TRANSLATE_NOOP("Texts", "Waiting for your answer"),
    "alert_state.acknowledged": QT_TRANSLATE_NOOP("Texts", "Acknowledged"),
    "alert_state.explained": QT_TRANSLATE_NOOP("Texts", "Explained"),
    "alert_state.notified": QT_TRANSLATE_NOOP("Texts", "For your information"),
    # why the agent ended a session (gui/model.py SIGNOUT_NOTICES; %1 is the staff id)
    "signout.title": QT_TRANSLATE_NOOP("Texts", "Terminal Guard: signed out"),
    "signout.idle": QT_TRANSLATE_NOOP(
        "Texts", "%1 was signed out because this PC was not used for a while. Sign in again to continue."
    ),
    "signout.screen_locked": QT_TRANSLATE_NOOP(
        "Texts", "%1 was signed out because the screen was locked. Sign in again to continue."
    ),
    "signout.shift_end": QT_TRANSLATE_NOOP(
        "Texts", "%1 was signed out because the outlet's business hours have ended."
    ),
    "signout.logoff": QT_TRANSLATE_NOOP(
        "Texts", "%1 was signed out because the computer user who signed in has logged off."
    ),
    "signout.agent_stopped": QT_TRANSLATE_NOOP(
        "Texts", "%1 was signed out because the Terminal Guard service stopped. Sign in again once it runs."
    ),
    "signout.hq_expired": QT_TRANSLATE_NOOP(
        "Texts", "HQ ended the session of %1: it expired or is no longer valid. Please sign in again."
    ),
    "signout.hq_signed_out": QT_TRANSLATE_NOOP(
        "Texts", "HQ ended the session of %1. Sign in again if you still need to work."
    ),
    "signout.hq_staff_suspended": QT_TRANSLATE_NOOP(
        "Texts", "HQ suspended the staff account %1 and ended its session. Ask your outlet manager."
    ),
    "signout.hq_staff_disabled": QT_TRANSLATE_NOOP(
        "Texts", "HQ disabled the staff account %1 and ended its session. Ask your outlet manager."
    ),
    "signout.hq_wrong_outlet": QT_TRANSLATE_NOOP(
        "Texts", "HQ ended the session of %1: this staff ID no longer belongs to this PC's outlet. "
        "Ask your outlet manager."
    ),
    "signout.hq_device_revoked": QT_TRANSLATE_NOOP(
        "Texts", "HQ ended the session of %1 because it revoked this PC. Tell IT."
    ),
    "signout.other": QT_TRANSLATE_NOOP("Texts", "%1 was signed out (%2)."),
    # agent error codes (agent/localchannel/ops.py ERR_*, protocol.py, client.py; every one is
    # required by tests/gui/test_error_messages.py)
    "error.not_available": QT_TRANSLATE_NOOP("Texts", "Signing in to HQ is not available on this PC yet."),
    "error.invalid_argument": QT_TRANSLATE_NOOP("Texts", "The service did not accept the request (%1)."),
    "error.not_enrolled": QT_TRANSLATE_NOOP("Texts", "This PC is not registered with HQ yet; tell IT."),
    "error.revoked": QT_TRANSLATE_NOOP("Texts", "HQ has revoked this PC; tell IT."),
    "error.hq_unreachable": QT_TRANSLATE_NOOP("Texts", "HQ cannot be reached right now. Try again in a minute."),
    "error.bad_credentials": QT_TRANSLATE_NOOP("Texts", "Staff ID or password is wrong."),
    "error.staff_suspended": QT_TRANSLATE_NOOP("Texts", "This staff account is suspended. Ask your outlet manager."),
    "error.staff_locked": QT_TRANSLATE_NOOP(
        "Texts", "Too many wrong passwords: this staff account is locked for a while. "
        "Try again later, or ask your outlet manager to have it unlocked."
    ),
    "error.staff_disabled": QT_TRANSLATE_NOOP(
        "Texts", "This staff account has been disabled by HQ. Ask your outlet manager."
    ),
    "error.wrong_outlet": QT_TRANSLATE_NOOP(
        "Texts", "This staff ID does not belong to this PC's outlet. "
        "Sign in on a PC at your own outlet, or ask your outlet manager."
    ),
    "error.wrong_outlet_here": QT_TRANSLATE_NOOP(
        "Texts", "This staff ID does not belong to this PC's outlet (%1). "
        "Sign in on a PC at your own outlet, or ask your outlet manager."
    ),
    "error.already_signed_in": QT_TRANSLATE_NOOP(
        "Texts", "Someone else is still signed in on this PC. Only one person can be signed in at a time: "
        "they must sign out first (tray menu, Sign out)."
    ),
    "error.already_signed_in_as": QT_TRANSLATE_NOOP(
        "Texts", "%1 is still signed in on this PC. Only one person can be signed in at a time: "
        "%1 must sign out first (tray menu, Sign out)."
    ),
    "error.policy_ack_required": QT_TRANSLATE_NOOP(
        "Texts", "Please read and acknowledge the data-handling policy first."
    ),
    "error.session_expired": QT_TRANSLATE_NOOP(
        "Texts", "Your session has expired because this PC could not reach HQ in time. Please sign in again."
    ),
    "error.hq_refused": QT_TRANSLATE_NOOP(
        "Texts", "HQ refused the sign-in (%1). Try again; if it keeps happening, tell IT."
    ),
    "error.not_signed_in": QT_TRANSLATE_NOOP("Texts", "Nobody is signed in on this PC."),
    "error.staff_mismatch": QT_TRANSLATE_NOOP("Texts", "The staff ID you typed is not the signed-in staff."),
    "error.policy_changed": QT_TRANSLATE_NOOP("Texts", "The policy changed while you read it; please read it again."),
    "error.unknown_alert": QT_TRANSLATE_NOOP("Texts", "This alert no longer exists."),
    "error.justification_required": QT_TRANSLATE_NOOP("Texts", "A written justification is required."),
    "error.forbidden": QT_TRANSLATE_NOOP("Texts", "This user account may not use Terminal Guard on this PC."),
    "error.busy": QT_TRANSLATE_NOOP("Texts", "The service is busy. Try again in a moment."),
    "error.timeout": QT_TRANSLATE_NOOP("Texts", "The service took too long to answer. Try again in a moment."),
    "error.bad_request": QT_TRANSLATE_NOOP(
        "Texts", "The service did not understand the tray's request (%1). Tell IT; Terminal Guard may need updating."
    ),
    "error.unknown_op": QT_TRANSLATE_NOOP(
        "Texts", "The Terminal Guard service and tray versions do not match (%1). Tell IT to update Terminal Guard."
    ),
    "error.too_large": QT_TRANSLATE_NOOP("Texts", "The request was too large for the service (%1). Tell IT."),
    "error.protocol": QT_TRANSLATE_NOOP("Texts", "The service's answer could not be read (%1). Tell IT."),
    "error.internal": QT_TRANSLATE_NOOP("Texts", "The service failed to do this; try again or tell IT."),
    "error.untrusted_server": QT_TRANSLATE_NOOP(
        "Texts", "A program posing as the Terminal Guard service answered. Tell IT at once."
    ),
    "error.agent_unavailable": QT_TRANSLATE_NOOP("Texts", "The Terminal Guard service is not running."),
    "error.other": QT_TRANSLATE_NOOP("Texts", "The service refused the request (%1)."),
}

# Errors whose sentence names the code (%1), so IT can look it up from a screenshot.
ERRORS_WITH_CODE = frozenset({"error.invalid_argument", "error.bad_request", "error.unknown_op", "error.too_large",
                              "error.protocol", "error.other"})
# HQ's reason (English, never customer data by the channel's contract) goes into hq_refused, cut short.
MAX_DETAIL_CHARS = 120


def tr(source: str) -> str:
    return QCoreApplication.translate(CONTEXT, source)


def fill(template: str, args: tuple[str, ...]) -> str:
    # Highest number first, so %1 never eats the start of %10.
    for number in range(len(args), 0, -1):
        template = template.replace(f"%{number}", args[number - 1])
    return template


def render(text: Text) -> str:
    source = MESSAGES.get(text.key)
    if source is None:
        return fill(tr(MESSAGES["attention.unknown"]), (text.key,))
    return fill(tr(source), text.args)


def render_lines(texts: tuple[Text, ...] | list[Text]) -> list[str]:
    return [render(text) for text in texts]


def error_text(code: str, detail: str = "", *, outlet: str | None = None) -> Text:
    """The message for an agent error code, with what the answer (or this PC's ``outlet``) tells;
    unknown codes are named so IT can look them up."""
    if code == ops.ERR_ALREADY_SIGNED_IN and (staff := staff_in_detail(detail)):
        return Text("error.already_signed_in_as", (staff,))
    if code == ops.ERR_WRONG_OUTLET and outlet:
        return Text("error.wrong_outlet_here", (outlet,))
    if code == ops.ERR_HQ_REFUSED:
        reason = " ".join(detail.split())
        if len(reason) > MAX_DETAIL_CHARS:
            reason = reason[: MAX_DETAIL_CHARS - 1] + "…"
        return Text("error.hq_refused", (reason or code,))
    key = f"error.{code}"
    if key not in MESSAGES:
        return Text("error.other", (code,))
    return Text(key, (code,)) if key in ERRORS_WITH_CODE else Text(key)


def error_message(code: str, detail: str = "", *, outlet: str | None = None) -> str:
    return render(error_text(code, detail, outlet=outlet))


def severity_name(severity: str) -> str:
    return render(Text(f"severity.{severity}")) if f"severity.{severity}" in MESSAGES else severity


def category_name(category: str) -> str:
    return render(Text(f"category.{category}")) if f"category.{category}" in MESSAGES else category


def alert_state_name(state: str) -> str:
    return render(Text(f"alert_state.{state}")) if f"alert_state.{state}" in MESSAGES else state


def local_time(stamp: float | None) -> str:
    """A unix time in the UI language's date format; an em dash when there is none."""
    if stamp is None:
        return "—"
    moment = QDateTime.fromSecsSinceEpoch(int(stamp))
    return QLocale().toString(moment, QLocale.FormatType.ShortFormat)

