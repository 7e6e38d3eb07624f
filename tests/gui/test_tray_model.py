"""The tray's decisions without Qt: states, tooltip keys, menu entries, dialog rules, language."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from agent.localchannel import ops
from gui.lang import EN, ZH_CN, choose_language
from gui.model import (
    SIGNOUT_NOTICES,
    AgentStatus,
    AlertItem,
    AlertLists,
    PollResult,
    SessionEnd,
    StatusFormatError,
    Text,
    TrayState,
    answer_problem,
    can_acknowledge,
    derive_view,
    diagnostics_text,
    error_followup,
    menu_entries,
    new_alerts,
    signin_problem,
    signout_notice,
    staff_in_detail,
)
from tests.gui.agent_double import make_alert, make_status


def view_of(alerts: dict[str, Any] | None = None, **status: Any) -> Any:
    lists = AlertLists.from_result(alerts) if alerts is not None else None
    return derive_view(PollResult(status=AgentStatus.from_result(make_status(**status)), alerts=lists))


def test_importing_the_model_does_not_import_qt() -> None:
    code = "import sys, gui.model, gui.lang; print(json.dumps(sorted(m for m in sys.modules if 'PySide' in m)))"
    out = subprocess.run([sys.executable, "-c", "import json;" + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


@pytest.mark.parametrize(
    ("status", "alerts", "state", "headline"),
    [
        ({}, {"pending": [], "past": []}, TrayState.PROTECTED, "state.protected"),
        ({"staff": None}, None, TrayState.NOT_SIGNED_IN, "state.not_signed_in"),
        ({"hq_reachable": False}, {"pending": [], "past": []}, TrayState.HQ_UNREACHABLE, "state.hq_unreachable"),
        ({"hq_reachable": False, "staff": None}, None, TrayState.HQ_UNREACHABLE, "state.hq_unreachable"),
        ({"attention": ["policy_ack_required"]}, None, TrayState.ATTENTION, "state.attention"),
        ({"revoked": True}, None, TrayState.ATTENTION, "state.attention"),
        ({"enrolled": False, "staff": None}, None, TrayState.ATTENTION, "state.attention"),
        ({}, {"pending": [make_alert("a1")], "past": []}, TrayState.ATTENTION, "state.attention"),
        ({"hq_reachable": False, "attention": ["clock_skew"]}, None, TrayState.ATTENTION, "state.attention"),
    ],
)
def test_state_precedence(status: dict[str, Any], alerts: dict[str, Any] | None, state: TrayState,
                          headline: str) -> None:
    view = view_of(alerts, **status)
    assert view.state is state
    assert view.tooltip_key == headline


def test_agent_unreachable_is_agent_not_running_with_a_plain_reason() -> None:
    view = derive_view(PollResult(unavailable=True, error_detail="nothing is listening"))
    assert view.state is TrayState.AGENT_NOT_RUNNING
    assert view.headline == Text("state.agent_not_running")
    assert view.details == (Text("detail.agent_down"),)
    assert view.error_detail == "nothing is listening"


def test_an_impostor_agent_is_reported_as_such() -> None:
    view = derive_view(PollResult(error_code="untrusted_server", error_detail="served by uid 1000"))
    assert view.state is TrayState.AGENT_NOT_RUNNING
    assert view.details == (Text("detail.untrusted_server"),)


def test_details_name_attention_staff_and_hq() -> None:
    view = view_of({"pending": [make_alert("a1"), make_alert("a2")], "past": []},
                   hq_reachable=False, attention=["mystery_code"])
    assert view.details == (
        Text("attention.unknown", ("mystery_code",)),
        Text("attention.alerts_pending_count", ("2",)),
        Text("detail.signed_in_as", ("S001",)),
        Text("detail.hq_unreachable"),
    )
    assert view.attention == ("mystery_code", "alerts_pending")


def test_status_of_the_wrong_shape_is_refused_with_the_field_named() -> None:
    with pytest.raises(StatusFormatError, match="'spool_depth'"):
        AgentStatus.from_result(make_status(spool_depth="many"))
    with pytest.raises(StatusFormatError, match="'spool_depth'"):
        AgentStatus.from_result(make_status(spool_depth=True))
    with pytest.raises(StatusFormatError, match="'attention'"):
        AgentStatus.from_result(make_status(attention=[1]))
    with pytest.raises(StatusFormatError, match="'enrolled'"):
        AgentStatus.from_result({k: v for k, v in make_status().items() if k != "enrolled"})
    with pytest.raises(StatusFormatError, match="'alert_id'"):
        AlertLists.from_result({"pending": [{"title": "x"}], "past": []})


def keys(entries: Any) -> list[str]:
    return [entry.key for entry in entries]


def test_menu_for_signed_in_staff_offers_sign_out_policy_and_alerts() -> None:
    entries = menu_entries(view_of({"pending": [make_alert("a1")], "past": []}))
    assert keys(entries) == ["header", "detail", "detail", "sign_out", "policy", "alerts", "diagnostics",
                             "refresh", "quit"]
    by_key = {entry.key: entry for entry in entries}
    assert by_key["sign_out"].text == Text("menu.sign_out", ("S001",))
    assert by_key["alerts"].text == Text("menu.alerts_pending", ("1",)) and by_key["alerts"].emphasized
    assert not by_key["header"].enabled


def test_menu_without_staff_offers_sign_in_only_when_hq_is_reachable() -> None:
    online = {entry.key: entry for entry in menu_entries(view_of(staff=None))}
    assert online["sign_in"].enabled and "alerts" not in online and "sign_out" not in online
    offline = {entry.key: entry for entry in menu_entries(view_of(staff=None, hq_reachable=False))}
    assert not offline["sign_in"].enabled
    revoked = {entry.key: entry for entry in menu_entries(view_of(staff=None, revoked=True))}
    assert not revoked["sign_in"].enabled


def test_menu_when_policy_needs_acknowledging_says_so() -> None:
    entries = {entry.key: entry for entry in menu_entries(view_of(attention=["policy_ack_required"]))}
    assert entries["policy"].text == Text("menu.policy_required") and entries["policy"].emphasized


def test_menu_when_agent_is_down_keeps_diagnostics_and_quit() -> None:
    entries = menu_entries(derive_view(PollResult(unavailable=True)))
    assert keys(entries) == ["header", "detail", "diagnostics", "refresh", "quit"]


@pytest.mark.parametrize(
    ("staff", "password", "problem"),
    [("", "pw", "signin.staff_missing"), ("S 01", "pw", "signin.staff_invalid"),
     ("S001", "", "signin.password_missing"), ("S001", "pw", None), ("  S001 ", "pw", None)],
)
def test_signin_validation(staff: str, password: str, problem: str | None) -> None:
    found = signin_problem(staff, password)
    assert (found.key if found else None) == problem


def test_acknowledge_needs_scroll_and_the_exact_staff_id() -> None:
    assert can_acknowledge(True, "S001", "S001")
    assert can_acknowledge(True, " S001 ", "S001")
    assert not can_acknowledge(False, "S001", "S001")
    assert not can_acknowledge(True, "s001", "S001")
    assert not can_acknowledge(True, "S002", "S001")
    assert not can_acknowledge(True, "", None)


def test_answer_rules_for_high_and_low_alerts() -> None:
    high = AlertItem.from_dict(make_alert("h", severity="high"))
    low = AlertItem.from_dict(make_alert("l", severity="low"))
    assert answer_problem(high, "acknowledge", "") == Text("alerts.justification_required", ("10",))
    assert answer_problem(high, "acknowledge", "The manager asked me to.") is None
    assert answer_problem(low, "acknowledge", "") is None
    assert answer_problem(low, "explain", "") is not None
    assert answer_problem(low, "ignore", "") == Text("alerts.choose_action")


def test_new_alerts_split_into_notifications_and_questions() -> None:
    lists = AlertLists.from_result({
        "pending": [make_alert("p1"), make_alert("p2")],
        "past": [make_alert("n1", action="notify", state="notified"), make_alert("old", state="acknowledged")],
    })
    notify, ask = new_alerts({"p1", "old"}, lists)
    assert [a.alert_id for a in notify] == ["n1"]
    assert [a.alert_id for a in ask] == ["p2"]


def test_diagnostics_text_has_every_field_and_no_secrets() -> None:
    view = view_of(hq_reachable=False, spool_depth=17, last_heartbeat=1_700_000_000)
    text = diagnostics_text(view, "/var/lib/terminal-guard/agent.sock", "0.1.0", now=1_700_000_100)
    fields = dict(line.split(": ", 1) for line in text.splitlines())
    assert json.loads(fields["device_id"]) == "dev-7f3a"
    assert json.loads(fields["outlet_id"]) == "OUT-021"
    assert json.loads(fields["hq_url"]) == "https://hq.example.test:8443"
    assert json.loads(fields["hq_reachable"]) is False
    assert json.loads(fields["last_heartbeat"]) == "2023-11-14T22:13:20Z"
    assert json.loads(fields["spool_depth"]) == 17
    assert json.loads(fields["policy_version"]) == 3
    assert json.loads(fields["agent_version"]) == "0.1.0"
    assert json.loads(fields["collected_at"]) == "2023-11-14T22:15:00Z"
    assert "password" not in text


def test_diagnostics_when_agent_is_down_say_why() -> None:
    view = derive_view(PollResult(unavailable=True, error_detail="nothing is listening at /x"))
    text = diagnostics_text(view, "/x", "0.1.0", now=0)
    assert 'agent_running: false' in text and "nothing is listening at /x" in text


@pytest.mark.parametrize(
    ("override", "env", "system", "expected"),
    [
        (None, None, "C", ZH_CN),
        (None, None, "zh_CN", ZH_CN),
        (None, None, "en_US", EN),
        (None, None, "fr_FR", ZH_CN),
        (None, "en", "zh_CN", EN),
        (None, "klingon", "en_GB", EN),
        ("zh_CN", "en", "en_US", ZH_CN),
        ("en", None, "zh_CN", EN),
        (None, "zh-CN", "en_US", ZH_CN),
        (None, "en_US.UTF-8", "C", EN),
    ],
)
def test_language_choice(override: str | None, env: str | None, system: str, expected: str) -> None:
    assert choose_language(override, env, system) == expected


def test_attention_codes_all_have_texts() -> None:
    from gui.texts import MESSAGES

    for code in ops.ATTENTION_CODES:
        assert f"attention.{code}" in MESSAGES, code


def test_refusals_that_need_a_step_name_the_menu_entry_that_takes_it() -> None:
    assert error_followup(ops.ERR_POLICY_ACK_REQUIRED) == "policy"
    assert error_followup(ops.ERR_SESSION_EXPIRED) == "sign_in"
    assert error_followup(ops.ERR_NOT_SIGNED_IN) == "sign_in"
    assert error_followup(ops.ERR_STAFF_LOCKED) is None
    assert {"policy", "sign_in"} <= {entry.key for entry in menu_entries(view_of(staff=None))}


def test_the_signed_in_staff_is_read_from_an_already_signed_in_detail() -> None:
    assert staff_in_detail("S002 is signed in here; sign out first") == "S002"
    assert staff_in_detail("") is None
    assert staff_in_detail("<b>x</b> is signed in here") is None
    assert staff_in_detail("S002 left") is None


# --- alerts of a staff member, sessions the agent ended ---------------------------------------------


def test_alerts_with_or_without_staff_and_repeats_are_read() -> None:
    older = AlertItem.from_dict(make_alert("old"))  # an older agent: neither field
    assert older.staff is None and older.repeats == 0
    newer = AlertItem.from_dict({**make_alert("new"), "staff": "S001", "repeats": 3})
    assert newer.staff == "S001" and newer.repeats == 3
    assert AlertItem.from_dict({**make_alert("nobody"), "staff": None}).staff is None
    with pytest.raises(StatusFormatError, match="'staff'"):
        AlertItem.from_dict({**make_alert("bad"), "staff": 7})


def test_last_signout_is_read_and_may_be_missing() -> None:
    assert AgentStatus.from_result({k: v for k, v in make_status().items() if k != "last_signout"}).last_signout is None
    ended = AgentStatus.from_result(make_status(staff=None, last_signout={"reason": "idle", "at": 5, "staff": "S001"}))
    assert ended.last_signout == SessionEnd("idle", 5.0, "S001")
    with pytest.raises(StatusFormatError, match="last_signout"):
        AgentStatus.from_result(make_status(last_signout="idle"))
    with pytest.raises(StatusFormatError, match="'staff'"):
        AgentStatus.from_result(make_status(last_signout={"reason": "idle", "at": 5}))


def status_after(reason: str | None, *, staff: str | None = None, at: float = 100.0) -> AgentStatus:
    last = {"reason": reason, "at": at, "staff": "S001"} if reason else None
    return AgentStatus.from_result(make_status(staff=staff, last_signout=last))


@pytest.mark.parametrize(("reason", "key", "followup"), [
    (ops.SIGNOUT_IDLE, "signout.idle", "sign_in"),
    (ops.SIGNOUT_SCREEN_LOCKED, "signout.screen_locked", "sign_in"),
    (ops.SIGNOUT_SHIFT_END, "signout.shift_end", None),
    (ops.SIGNOUT_LOGOFF, "signout.logoff", None),
    ("hq:expired_token", "signout.hq_expired", "sign_in"),
    ("hq:signed_out", "signout.hq_signed_out", "sign_in"),
    ("hq:staff_suspended", "signout.hq_staff_suspended", None),
    ("hq:device_revoked", "signout.hq_device_revoked", None),
])
def test_a_session_the_agent_ended_is_explained_per_reason(reason: str, key: str, followup: str | None) -> None:
    notice = signout_notice(None, status_after(reason))
    assert notice is not None
    assert notice.text == Text(key, ("S001",)) and notice.followup == followup


def test_an_unknown_reason_is_named_and_opens_nothing() -> None:
    notice = signout_notice(None, status_after("hq:new_code"))
    assert notice is not None and notice.text == Text("signout.other", ("S001", "hq:new_code"))
    assert notice.followup is None


def test_no_notice_for_the_same_end_twice_a_staff_sign_out_or_a_new_session() -> None:
    seen = status_after(ops.SIGNOUT_IDLE).last_signout
    assert signout_notice(seen, status_after(ops.SIGNOUT_IDLE)) is None, "already told"
    assert signout_notice(seen, status_after(ops.SIGNOUT_IDLE, at=200.0)) is not None, "a later one is new"
    assert signout_notice(None, status_after(None)) is None, "the staff signed out themselves"
    assert signout_notice(None, status_after(ops.SIGNOUT_IDLE, staff="S002")) is None, "someone signed in again"


def test_every_ending_code_of_hq_has_its_own_notice() -> None:
    from agent.binding.manager import ENDING_CODES

    assert {ops.SIGNOUT_HQ_PREFIX + code for code in ENDING_CODES} <= set(SIGNOUT_NOTICES)
