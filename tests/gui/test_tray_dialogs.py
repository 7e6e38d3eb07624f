"""Each dialog against the agent's real local channel: buttons, validation, errors, keyboard use."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from agent.localchannel import ops
from agent.localchannel.client import AgentClient
from agent.localchannel.default_policy import DEFAULT_POLICY_EN, DEFAULT_POLICY_ZH
from agent.localchannel.protocol import ChannelError
from gui.dialogs.alerts import AlertsDialog
from gui.dialogs.diagnostics import DiagnosticsWindow
from gui.dialogs.policy import PolicyDialog
from gui.dialogs.signin import SignInDialog
from gui.model import AgentStatus, AlertLists, PollResult, derive_view
from gui.worker import CallRunner
from tests.gui.agent_double import FakeAgent, make_alert, make_status, save_screenshot

WAIT_MS = 5000


# --- sign-in -------------------------------------------------------------------------------------


def signin_dialog(qtbot: Any, runner: CallRunner) -> SignInDialog:
    dialog = SignInDialog(runner)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_signin_button_waits_for_both_fields(qtbot: Any, english: None, runner: CallRunner) -> None:
    dialog = signin_dialog(qtbot, runner)
    assert not dialog.sign_in_button.isEnabled()
    qtbot.keyClicks(dialog.staff_edit, "S001")
    assert not dialog.sign_in_button.isEnabled()
    qtbot.keyClicks(dialog.password_edit, "secret")
    assert dialog.sign_in_button.isEnabled()
    assert dialog.password_edit.echoMode() == dialog.password_edit.EchoMode.Password


def test_signin_refuses_a_malformed_staff_id_without_asking_the_agent(
    qtbot: Any, english: None, runner: CallRunner, agent: FakeAgent
) -> None:
    dialog = signin_dialog(qtbot, runner)
    qtbot.keyClicks(dialog.staff_edit, "S 001")
    qtbot.keyClicks(dialog.password_edit, "secret")
    qtbot.mouseClick(dialog.sign_in_button, Qt.MouseButton.LeftButton)
    assert dialog.message.isVisible()
    assert dialog.message.text().startswith("A staff ID has letters, digits")
    assert agent.calls_of(ops.OP_SIGNIN) == []


def test_signin_not_available_yet_is_shown_and_the_password_cleared(
    qtbot: Any, english: None, runner: CallRunner, agent: FakeAgent
) -> None:
    dialog = signin_dialog(qtbot, runner)
    qtbot.keyClicks(dialog.staff_edit, "S001")
    qtbot.keyClicks(dialog.password_edit, "secret")
    qtbot.keyClick(dialog.password_edit, Qt.Key.Key_Return)  # keyboard only: Enter signs in
    qtbot.waitUntil(lambda: "not available" in dialog.message.text(), timeout=WAIT_MS)
    assert dialog.message.text() == "Signing in to HQ is not available on this PC yet."
    assert dialog.password_edit.text() == ""
    assert dialog.isVisible()
    assert agent.calls_of(ops.OP_SIGNIN) == [{"staff": "S001", "password": "secret"}]


def test_signin_wrong_password_message(qtbot: Any, english: None, runner: CallRunner, agent: FakeAgent) -> None:
    agent.signin_error = ChannelError(ops.ERR_BAD_CREDENTIALS, "")
    dialog = signin_dialog(qtbot, runner)
    qtbot.keyClicks(dialog.staff_edit, "S001")
    qtbot.keyClicks(dialog.password_edit, "wrong")
    qtbot.mouseClick(dialog.sign_in_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.message.text() == "Staff ID or password is wrong.", timeout=WAIT_MS)


def test_signin_success_emits_the_staff_and_closes(
    qtbot: Any, english: None, runner: CallRunner, agent: FakeAgent
) -> None:
    agent.signin_error = None
    agent.set_status(staff=None)
    dialog = signin_dialog(qtbot, runner)
    qtbot.keyClicks(dialog.staff_edit, "  S007 ")
    qtbot.keyClicks(dialog.password_edit, "secret")
    with qtbot.waitSignal(dialog.signed_in, timeout=WAIT_MS) as signed:
        qtbot.mouseClick(dialog.sign_in_button, Qt.MouseButton.LeftButton)
    assert signed.args == ["S007"]
    assert not dialog.isVisible()
    assert agent.status["staff"] == "S007"


def test_signin_when_the_agent_is_gone(qtbot: Any, english: None, socket_dir: Any) -> None:
    runner = CallRunner(AgentClient(str(socket_dir / "absent.sock"), timeout_s=0.5))
    try:
        dialog = signin_dialog(qtbot, runner)
        qtbot.keyClicks(dialog.staff_edit, "S001")
        qtbot.keyClicks(dialog.password_edit, "secret")
        qtbot.mouseClick(dialog.sign_in_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: dialog.message.text() == "The Terminal Guard service is not running.",
                        timeout=WAIT_MS)
    finally:
        runner.shutdown()


# --- policy --------------------------------------------------------------------------------------


def policy_dialog(qtbot: Any, runner: CallRunner, staff: str | None = "S001", lang: str = "en") -> PolicyDialog:
    dialog = PolicyDialog(runner, staff, lang)
    qtbot.addWidget(dialog)
    dialog.resize(560, 480)
    dialog.show()
    dialog.load()
    qtbot.waitUntil(lambda: dialog.policy_hash is not None, timeout=WAIT_MS)
    return dialog


def test_policy_shows_the_agents_text_in_the_ui_language(qtbot: Any, english: None, runner: CallRunner) -> None:
    english_dialog = policy_dialog(qtbot, runner, lang="en")
    assert english_dialog.text_view.toPlainText() == DEFAULT_POLICY_EN
    chinese_dialog = policy_dialog(qtbot, runner, lang="zh_CN")
    assert chinese_dialog.text_view.toPlainText() == DEFAULT_POLICY_ZH


def test_acknowledge_needs_scroll_to_end_and_the_staff_id(
    qtbot: Any, english: None, runner: CallRunner, agent: FakeAgent
) -> None:
    agent.set_status(attention=[ops.ATTN_POLICY_ACK_REQUIRED])
    dialog = policy_dialog(qtbot, runner)
    bar = dialog.text_view.verticalScrollBar()
    assert bar.maximum() > 0, "the default policy is longer than the view"
    assert not dialog.ack_button.isEnabled()
    assert dialog.scroll_hint.isVisible()

    qtbot.keyClicks(dialog.staff_edit, "S001")
    assert not dialog.ack_button.isEnabled(), "typed but not scrolled"

    bar.setValue(bar.maximum() // 2)
    assert not dialog.ack_button.isEnabled(), "half way is not the end"
    dialog.text_view.setFocus()
    for _ in range(60):  # keyboard only: page down to the end
        qtbot.keyClick(dialog.text_view, Qt.Key.Key_PageDown)
    assert bar.value() == bar.maximum()
    assert dialog.ack_button.isEnabled()
    assert not dialog.scroll_hint.isVisible()

    dialog.staff_edit.setText("S002")
    assert not dialog.ack_button.isEnabled(), "another staff id"
    bar.setValue(0)
    dialog.staff_edit.setText("S001")
    assert dialog.ack_button.isEnabled(), "having reached the end once is enough"

    with qtbot.waitSignal(dialog.acknowledged, timeout=WAIT_MS) as done:
        qtbot.mouseClick(dialog.ack_button, Qt.MouseButton.LeftButton)
    assert done.args[0]["queued"] is False
    (sent,) = agent.calls_of(ops.OP_ACKNOWLEDGE_POLICY)
    assert sent == {"staff": "S001", "policy_hash": agent.policy["hash"], "typed_staff": "S001"}
    assert ops.ATTN_POLICY_ACK_REQUIRED not in agent.status["attention"]


def test_acknowledgement_while_hq_is_offline_is_reported_queued(
    qtbot: Any, english: None, runner: CallRunner, agent: FakeAgent
) -> None:
    agent.set_status(hq_reachable=False)
    dialog = policy_dialog(qtbot, runner)
    bar = dialog.text_view.verticalScrollBar()
    bar.setValue(bar.maximum())
    qtbot.keyClicks(dialog.staff_edit, "S001")
    with qtbot.waitSignal(dialog.acknowledged, timeout=WAIT_MS) as done:
        qtbot.mouseClick(dialog.ack_button, Qt.MouseButton.LeftButton)
    assert done.args[0]["queued"] is True


def test_short_policy_that_fits_counts_as_read(qtbot: Any, english: None, runner: CallRunner,
                                               agent: FakeAgent) -> None:
    agent.policy = {**agent.policy, "text_en": "Do not share accounts.", "text_zh": "不得共用账号。",
                    "hash": ops.policy_text_hash("不得共用账号。", "Do not share accounts.")}
    dialog = policy_dialog(qtbot, runner)
    qtbot.waitUntil(lambda: dialog.scrolled_to_end, timeout=WAIT_MS)
    qtbot.keyClicks(dialog.staff_edit, "S001")
    assert dialog.ack_button.isEnabled()


def test_policy_changed_meanwhile_reloads_and_requires_reading_again(
    qtbot: Any, english: None, runner: CallRunner, agent: FakeAgent
) -> None:
    dialog = policy_dialog(qtbot, runner)
    bar = dialog.text_view.verticalScrollBar()
    bar.setValue(bar.maximum())
    qtbot.keyClicks(dialog.staff_edit, "S001")
    new_en = DEFAULT_POLICY_EN + "\n12. New rule.\n"
    agent.policy = {**agent.policy, "text_en": new_en, "hash": ops.policy_text_hash(DEFAULT_POLICY_ZH, new_en)}
    qtbot.mouseClick(dialog.ack_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.policy_hash == agent.policy["hash"], timeout=WAIT_MS)
    assert "policy changed" in dialog.message.text()
    assert not dialog.scrolled_to_end and not dialog.ack_button.isEnabled()
    assert "12. New rule." in dialog.text_view.toPlainText()


def test_policy_without_signed_in_staff_is_read_only(qtbot: Any, english: None, runner: CallRunner) -> None:
    dialog = policy_dialog(qtbot, runner, staff=None)
    bar = dialog.text_view.verticalScrollBar()
    bar.setValue(bar.maximum())
    assert not dialog.staff_edit.isEnabled()
    assert not dialog.ack_button.isEnabled()
    assert dialog.message.text() == "Sign in first to acknowledge the policy."


# --- alerts --------------------------------------------------------------------------------------


def alerts_dialog(qtbot: Any, runner: CallRunner, agent: FakeAgent) -> AlertsDialog:
    dialog = AlertsDialog(runner)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.refresh()
    expected = len(agent.alerts["pending"]) + len(agent.alerts["past"])
    qtbot.waitUntil(lambda: dialog.pending_list.count() + dialog.past_list.count() == expected, timeout=WAIT_MS)
    return dialog


def test_high_alert_needs_a_justification_before_send(
    qtbot: Any, english: None, runner: CallRunner, agent: FakeAgent
) -> None:
    agent.alerts = {"pending": [make_alert("h1", severity="high")], "past": []}
    dialog = alerts_dialog(qtbot, runner, agent)
    selected = dialog.selected_alert()
    assert selected is not None and selected.alert_id == "h1"
    assert dialog.program_value.text() == "anydesk.exe"
    assert dialog.severity_value.text() == "High"
    assert dialog.requirement_label.text() == "A written justification is required for high and critical alerts."
    assert not dialog.send_button.isEnabled()
    qtbot.keyClicks(dialog.justification_edit, "short")
    assert not dialog.send_button.isEnabled()
    qtbot.keyClicks(dialog.justification_edit, " - the outlet manager installed it for a remote fix")
    assert dialog.send_button.isEnabled()
    with qtbot.waitSignal(dialog.answered, timeout=WAIT_MS) as answered:
        qtbot.mouseClick(dialog.send_button, Qt.MouseButton.LeftButton)
    assert answered.args == ["h1"]
    (sent,) = agent.calls_of(ops.OP_ANSWER_ALERT)
    assert sent == {"alert_id": "h1", "action": "acknowledge",
                    "justification": "short - the outlet manager installed it for a remote fix"}
    qtbot.waitUntil(lambda: dialog.pending_list.count() == 0 and dialog.past_list.count() == 1, timeout=WAIT_MS)
    assert dialog.empty_label.isVisible()


def test_low_alert_can_be_acknowledged_without_text_but_explain_needs_it(
    qtbot: Any, english: None, runner: CallRunner, agent: FakeAgent
) -> None:
    agent.alerts = {"pending": [make_alert("l1", severity="low")], "past": []}
    dialog = alerts_dialog(qtbot, runner, agent)
    assert dialog.send_button.isEnabled()
    assert dialog.requirement_label.text() == "A justification is optional for this alert."
    dialog.explain_radio.setChecked(True)
    assert not dialog.send_button.isEnabled()
    assert dialog.requirement_label.text() == "Write down why this happened."


def test_agent_refusal_of_an_answer_is_shown(
    qtbot: Any, english: None, runner: CallRunner, agent: FakeAgent
) -> None:
    agent.alerts = {"pending": [make_alert("gone", severity="low")], "past": []}
    dialog = alerts_dialog(qtbot, runner, agent)
    agent.alerts = {"pending": [], "past": []}  # answered elsewhere meanwhile
    qtbot.mouseClick(dialog.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.message.text() == "This alert no longer exists.", timeout=WAIT_MS)


def test_past_alerts_are_shown_without_an_answer_box(
    qtbot: Any, english: None, runner: CallRunner, agent: FakeAgent
) -> None:
    agent.alerts = {"pending": [], "past": [make_alert("old", state="explained", rows=400)]}
    dialog = alerts_dialog(qtbot, runner, agent)
    assert dialog.empty_label.isVisible()
    assert dialog.select("old")
    assert dialog.state_value.text() == "Explained"
    assert dialog.rows_value.text() == "400"
    assert not dialog.answer_box.isVisible()


# --- diagnostics ---------------------------------------------------------------------------------


def test_diagnostics_show_and_copy_every_field(qtbot: Any, english: None, qapp: QApplication) -> None:
    status = AgentStatus.from_result(make_status(spool_depth=12, hq_reachable=False))
    view = derive_view(PollResult(status=status, alerts=AlertLists()))
    window = DiagnosticsWindow("/var/lib/terminal-guard/agent.sock")
    qtbot.addWidget(window)
    window.set_view(view)
    window.show()
    shown = {key: label.text() for key, label in window.values.items()}
    assert shown["agent_version"] == "0.1.0"
    assert shown["device_id"] == "dev-7f3a"
    assert shown["outlet_id"] == "OUT-021"
    assert shown["hq_url"] == "https://hq.example.test:8443"
    assert shown["hq_reachable"] == "No"
    assert shown["spool_depth"] == "12"
    assert shown["policy_version"] == "3"
    assert shown["last_heartbeat"] not in ("", "—")
    qtbot.mouseClick(window.copy_button, Qt.MouseButton.LeftButton)
    copied = QGuiApplication.clipboard().text()
    fields = {line.split(": ", 1)[0]: json.loads(line.split(": ", 1)[1]) for line in copied.splitlines()}
    assert fields["device_id"] == "dev-7f3a" and fields["spool_depth"] == 12 and fields["hq_reachable"] is False
    assert window.message.text() == "Diagnostics copied to the clipboard."


# --- screenshots in both languages ---------------------------------------------------------------


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_dialog_screenshots(qtbot: Any, use_language: Callable[[str], None], runner: CallRunner,
                            agent: FakeAgent, lang: str) -> None:
    use_language(lang)
    signin = signin_dialog(qtbot, runner)
    signin.message.show_error(signin.tr("Signing in…"))
    save_screenshot(signin, "signin", lang)
    policy = policy_dialog(qtbot, runner, lang=lang)
    save_screenshot(policy, "policy", lang)
    agent.alerts = {"pending": [make_alert("h1")], "past": [make_alert("p0", state="acknowledged")]}
    alerts = alerts_dialog(qtbot, runner, agent)
    save_screenshot(alerts, "alerts", lang)
    diagnostics = DiagnosticsWindow("/var/lib/terminal-guard/agent.sock")
    qtbot.addWidget(diagnostics)
    diagnostics.set_view(derive_view(PollResult(status=AgentStatus.from_result(make_status()))))
    diagnostics.show()
    save_screenshot(diagnostics, "diagnostics", lang)
