"""The tray against the agent's real local channel: states, icons, tooltips, menu, fallback window."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon, QImage
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from agent.localchannel import ops
from agent.localchannel.client import AgentClient
from agent.localchannel.protocol import ChannelError
from agent.localchannel.server import LocalChannelServer
from gui.app import TrayController
from gui.icons import state_icon, state_image
from gui.model import TrayState
from tests.gui.agent_double import FakeAgent, make_alert, save_screenshot

POLL_S = 0.2
WAIT_MS = 5000


def icon_image(icon: QIcon, size: int = 32) -> QImage:
    return icon.pixmap(size, size).toImage().convertToFormat(QImage.Format.Format_ARGB32)


@pytest.fixture
def make_tray(qapp: QApplication) -> Iterator[Callable[..., TrayController]]:
    made: list[TrayController] = []

    def build(client: AgentClient, *, use_tray: bool | None = True, lang: str = "en") -> TrayController:
        controller = TrayController(client, lang=lang, poll_interval_s=POLL_S, use_tray=use_tray)
        made.append(controller)
        controller.start()
        return controller

    yield build
    for controller in made:
        controller.shutdown()


def wait_state(qtbot: Any, controller: TrayController, state: TrayState) -> None:
    qtbot.waitUntil(lambda: controller.view.state is state, timeout=WAIT_MS)


def test_icons_differ_for_every_state(qapp: QApplication) -> None:
    images = {state: state_image(state, 32) for state in TrayState}
    for first in TrayState:
        for second in TrayState:
            if first is not second:
                assert images[first] != images[second], (first, second)
    assert not state_icon(TrayState.PROTECTED).isNull()


@pytest.mark.parametrize(
    ("status", "alerts", "state", "tooltip_start"),
    [
        ({}, [], TrayState.PROTECTED, "Terminal Guard: this PC is protected\nSigned in as S001"),
        ({"staff": None}, [], TrayState.NOT_SIGNED_IN, "Terminal Guard: not signed in\nSign in here"),
        ({"hq_reachable": False}, [], TrayState.HQ_UNREACHABLE,
         "Terminal Guard: HQ unreachable, still protecting\nSigned in as S001\nEvents are kept on this PC"),
        ({}, [make_alert("a1")], TrayState.ATTENTION,
         "Terminal Guard: needs your attention\nAlerts waiting for your answer: 1"),
        ({"revoked": True, "staff": None}, [], TrayState.ATTENTION,
         "Terminal Guard: needs your attention\nHQ has revoked this PC"),
    ],
)
def test_each_agent_state_sets_icon_and_tooltip(
    qtbot: Any, english: None, agent: FakeAgent, client: AgentClient, make_tray: Callable[..., TrayController],
    status: dict[str, Any], alerts: list[dict[str, Any]], state: TrayState, tooltip_start: str,
) -> None:
    agent.set_status(**status)
    agent.alerts = {"pending": alerts, "past": []}
    controller = make_tray(client)
    wait_state(qtbot, controller, state)
    assert controller.tray is not None
    assert icon_image(controller.tray.icon()) == icon_image(state_icon(state))
    assert controller.tray.toolTip().startswith(tooltip_start), controller.tray.toolTip()


def test_agent_not_running_state_and_recovery(
    qtbot: Any, english: None, agent: FakeAgent, agent_server: LocalChannelServer,
    make_tray: Callable[..., TrayController],
) -> None:
    controller = make_tray(AgentClient(agent_server.address, timeout_s=1.0))
    wait_state(qtbot, controller, TrayState.PROTECTED)
    agent_server.stop()
    wait_state(qtbot, controller, TrayState.AGENT_NOT_RUNNING)
    assert controller.tray is not None
    assert controller.tray.toolTip() == (
        "Terminal Guard service is not running\nThis PC is not protected. Please tell your IT contact."
    )
    assert icon_image(controller.tray.icon()) == icon_image(state_icon(TrayState.AGENT_NOT_RUNNING))
    revived = LocalChannelServer(agent_server.address, agent.handlers())
    revived.start()
    try:
        wait_state(qtbot, controller, TrayState.PROTECTED)
    finally:
        revived.stop()


def test_menu_is_rebuilt_from_the_current_state_when_opened(
    qtbot: Any, english: None, agent: FakeAgent, client: AgentClient, make_tray: Callable[..., TrayController],
) -> None:
    agent.set_status(staff=None)
    controller = make_tray(client)
    wait_state(qtbot, controller, TrayState.NOT_SIGNED_IN)
    controller.menu.aboutToShow.emit()
    texts = [action.text() for action in controller.menu.actions() if not action.isSeparator()]
    assert "Sign in…" in texts and not any(text.startswith("Sign out") for text in texts)

    agent.set_status(staff="S002")
    wait_state(qtbot, controller, TrayState.PROTECTED)
    assert "Sign in…" in [a.text() for a in controller.menu.actions()], "not rebuilt until opened"
    controller.menu.aboutToShow.emit()
    texts = [action.text() for action in controller.menu.actions() if not action.isSeparator()]
    assert "Sign out S002" in texts and "Sign in…" not in texts
    assert texts[0] == "Terminal Guard: this PC is protected"
    header = controller.menu.actions()[0]
    assert not header.isEnabled()


def test_menu_actions_trigger_their_dialogs(
    qtbot: Any, english: None, agent: FakeAgent, client: AgentClient, make_tray: Callable[..., TrayController],
) -> None:
    controller = make_tray(client)
    wait_state(qtbot, controller, TrayState.PROTECTED)
    controller.menu.aboutToShow.emit()
    by_key = {action.data(): action for action in controller.menu.actions() if action.data()}
    by_key["diagnostics"].trigger()
    assert controller.diagnostics_window is not None and controller.diagnostics_window.isVisible()
    by_key["alerts"].trigger()
    assert controller.alerts_dialog is not None and controller.alerts_dialog.isVisible()
    by_key["policy"].trigger()
    assert controller.policy_dialog is not None and controller.policy_dialog.isVisible()
    by_key["sign_out"].trigger()
    qtbot.waitUntil(lambda: agent.calls_of(ops.OP_SIGNOUT) != [], timeout=WAIT_MS)
    wait_state(qtbot, controller, TrayState.NOT_SIGNED_IN)


def test_without_a_system_tray_a_window_says_the_agent_is_not_running(
    qtbot: Any, english: None, socket_dir: Any, make_tray: Callable[..., TrayController],
) -> None:
    assert not QSystemTrayIcon.isSystemTrayAvailable(), "offscreen has no tray: the fallback is exercised"
    controller = make_tray(AgentClient(str(socket_dir / "absent.sock"), timeout_s=0.5), use_tray=None)
    assert controller.tray is None and controller.window is not None
    assert controller.view.tooltip_key == "state.connecting"
    qtbot.waitUntil(lambda: controller.view.tooltip_key == "state.agent_not_running", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: controller.window is not None and controller.window.isVisible(), timeout=WAIT_MS)
    assert controller.window.headline_label.text() == "Terminal Guard service is not running"
    assert "This PC is not protected" in controller.window.details_label.text()
    controller.window.close()
    assert controller.window.isVisible(), "closing the only window minimises it instead"


def test_fallback_window_follows_the_state(
    qtbot: Any, english: None, agent: FakeAgent, client: AgentClient, make_tray: Callable[..., TrayController],
) -> None:
    controller = make_tray(client, use_tray=False)
    wait_state(qtbot, controller, TrayState.PROTECTED)
    assert controller.window is not None
    assert controller.window.headline_label.text() == "Terminal Guard: this PC is protected"
    assert controller.window.menu_button.menu() is controller.menu


def test_policy_dialog_opens_by_itself_when_acknowledgement_becomes_required(
    qtbot: Any, english: None, agent: FakeAgent, client: AgentClient, make_tray: Callable[..., TrayController],
) -> None:
    controller = make_tray(client)
    wait_state(qtbot, controller, TrayState.PROTECTED)
    assert controller.policy_dialog is None
    agent.set_status(attention=[ops.ATTN_POLICY_ACK_REQUIRED])
    qtbot.waitUntil(lambda: controller.policy_dialog is not None, timeout=WAIT_MS)
    assert controller.policy_dialog is not None and controller.policy_dialog.isVisible()


def test_new_alerts_notify_and_require_ack_opens_the_alerts_dialog(
    qtbot: Any, english: None, agent: FakeAgent, client: AgentClient, make_tray: Callable[..., TrayController],
) -> None:
    controller = make_tray(client)
    wait_state(qtbot, controller, TrayState.PROTECTED)
    qtbot.waitUntil(lambda: controller.view.alerts is not None, timeout=WAIT_MS)
    with qtbot.waitSignal(controller.notified, timeout=WAIT_MS) as notice:
        agent.alerts = {"pending": [], "past": [make_alert("n1", action="notify", state="notified",
                                                            title="Scripting tool started", process_name="python.exe")]}
    assert notice.args == ["Terminal Guard alert", "Scripting tool started (python.exe)"]
    assert controller.alerts_dialog is None, "a notify finding does not ask for an answer"
    agent.alerts = {"pending": [make_alert("p1")], "past": agent.alerts["past"]}
    qtbot.waitUntil(lambda: controller.alerts_dialog is not None, timeout=WAIT_MS)
    dialog = controller.alerts_dialog
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.selected_alert() is not None, timeout=WAIT_MS)
    selected = dialog.selected_alert()
    assert selected is not None and selected.alert_id == "p1"


def test_agent_calls_never_run_on_the_gui_thread(
    qtbot: Any, english: None, agent: FakeAgent, client: AgentClient, make_tray: Callable[..., TrayController],
) -> None:
    call_threads: list[str] = []
    render_threads: list[str] = []

    class RecordingClient(AgentClient):
        def call(self, op: str, **args: Any) -> dict[str, Any]:
            call_threads.append(threading.current_thread().name)
            return super().call(op, **args)

    controller = make_tray(RecordingClient(client.address))
    controller.view_changed.connect(lambda _view: render_threads.append(threading.current_thread().name))
    qtbot.waitUntil(lambda: len(render_threads) >= 2, timeout=WAIT_MS)
    controller.trigger("sign_out")
    qtbot.waitUntil(lambda: agent.calls_of(ops.OP_SIGNOUT) != [], timeout=WAIT_MS)
    assert "tg-tray-poller" in call_threads
    assert any(name.startswith("tg-tray-call") for name in call_threads)
    assert threading.main_thread().name not in call_threads
    assert set(render_threads) == {threading.main_thread().name}, "views are rendered on the GUI thread"


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_menu_and_window_screenshots(
    qtbot: Any, use_language: Callable[[str], None], agent: FakeAgent, client: AgentClient,
    make_tray: Callable[..., TrayController], lang: str,
) -> None:
    use_language(lang)
    agent.alerts = {"pending": [make_alert("a1")], "past": []}
    controller = make_tray(client, use_tray=False, lang=lang)
    wait_state(qtbot, controller, TrayState.ATTENTION)
    controller.menu.aboutToShow.emit()
    controller.menu.adjustSize()
    assert save_screenshot(controller.menu, "tray_menu", lang).stat().st_size > 0
    assert controller.window is not None
    save_screenshot(controller.window, "status_window", lang)


def test_sign_in_then_policy_acknowledgement_then_protected(
    qtbot: Any, english: None, agent: FakeAgent, client: AgentClient, make_tray: Callable[..., TrayController],
) -> None:
    agent.signin_error = None
    agent.set_status(staff=None)
    controller = make_tray(client)
    wait_state(qtbot, controller, TrayState.NOT_SIGNED_IN)
    dialog = controller.open_signin()
    qtbot.keyClicks(dialog.staff_edit, "S001")
    qtbot.keyClicks(dialog.password_edit, "secret")
    qtbot.keyClick(dialog.password_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: controller.policy_dialog is not None, timeout=WAIT_MS)
    assert controller.view.state is TrayState.ATTENTION
    policy = controller.policy_dialog
    assert policy is not None
    qtbot.waitUntil(lambda: policy.policy_hash is not None, timeout=WAIT_MS)
    bar = policy.text_view.verticalScrollBar()
    bar.setValue(bar.maximum())
    qtbot.keyClicks(policy.staff_edit, "S001")
    with qtbot.waitSignal(controller.notified, timeout=WAIT_MS) as notice:
        qtbot.mouseClick(policy.ack_button, Qt.MouseButton.LeftButton)
    assert notice.args[1] == "Thank you. Your acknowledgement was sent to HQ."
    wait_state(qtbot, controller, TrayState.PROTECTED)
    qtbot.waitUntil(lambda: controller.policy_dialog is None, timeout=WAIT_MS)


# --- refusals that call for a step -----------------------------------------------------------------


def test_policy_ack_required_at_sign_in_opens_the_policy_dialog(
    qtbot: Any, english: None, agent: FakeAgent, client: AgentClient, make_tray: Callable[..., TrayController],
) -> None:
    agent.signin_error = ChannelError(ops.ERR_POLICY_ACK_REQUIRED, "the policy must be acknowledged first")
    agent.set_status(staff=None)
    controller = make_tray(client)
    wait_state(qtbot, controller, TrayState.NOT_SIGNED_IN)
    dialog = controller.open_signin()
    qtbot.keyClicks(dialog.staff_edit, "S001")
    qtbot.keyClicks(dialog.password_edit, "secret")
    qtbot.keyClick(dialog.password_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: controller.policy_dialog is not None, timeout=WAIT_MS)
    assert controller.policy_dialog is not None and controller.policy_dialog.isVisible()
    assert dialog.message.text() == "Please read and acknowledge the data-handling policy first."


@pytest.mark.parametrize(("lang", "shown"), [
    ("zh_CN", "本电脑未能及时连接总部，您的登录已过期，请重新登录。"),
    ("en", "Your session has expired because this PC could not reach HQ in time. Please sign in again."),
])
def test_an_expired_session_returns_to_the_sign_in_form_saying_why(
    qtbot: Any, use_language: Callable[[str], None], agent: FakeAgent, client: AgentClient,
    make_tray: Callable[..., TrayController], lang: str, shown: str,
) -> None:
    use_language(lang)
    agent.set_status(attention=[ops.ATTN_POLICY_ACK_REQUIRED])
    controller = make_tray(client, lang=lang)
    qtbot.waitUntil(lambda: controller.policy_dialog is not None, timeout=WAIT_MS)
    policy = controller.policy_dialog
    assert policy is not None
    qtbot.waitUntil(lambda: policy.policy_hash is not None, timeout=WAIT_MS)
    bar = policy.text_view.verticalScrollBar()
    bar.setValue(bar.maximum())
    qtbot.keyClicks(policy.staff_edit, "S001")
    agent.acknowledge_error = ChannelError(ops.ERR_SESSION_EXPIRED, "the session could not be refreshed")
    agent.set_status(staff=None)
    qtbot.mouseClick(policy.ack_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: controller.signin_dialog is not None, timeout=WAIT_MS)
    signin = controller.signin_dialog
    assert signin is not None and signin.isVisible()
    assert signin.message.text() == shown
    assert controller.policy_dialog is None, "the policy dialog of the ended session is closed"


# --- sessions the agent ended ----------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "title", "shown"), [
    ("zh_CN", "终端卫士：已登出", "由于本电脑一段时间无人操作，工号 S001 已自动登出。请重新登录后继续。"),
    ("en", "Terminal Guard: signed out",
     "S001 was signed out because this PC was not used for a while. Sign in again to continue."),
])
def test_an_idle_sign_out_is_explained_and_the_sign_in_form_opens_saying_why(
    qtbot: Any, use_language: Callable[[str], None], agent: FakeAgent, client: AgentClient,
    make_tray: Callable[..., TrayController], lang: str, title: str, shown: str,
) -> None:
    use_language(lang)
    controller = make_tray(client, lang=lang)
    wait_state(qtbot, controller, TrayState.PROTECTED)
    with qtbot.waitSignal(controller.notified, timeout=WAIT_MS) as notice:
        agent.end_session(ops.SIGNOUT_IDLE)
    assert notice.args == [title, shown]
    assert controller.view.state is TrayState.NOT_SIGNED_IN
    signin = controller.signin_dialog
    assert signin is not None and signin.isVisible()
    assert signin.message.text() == shown
    save_screenshot(signin, "signin_after_idle", lang)


def test_a_suspension_by_hq_is_explained_in_the_status_window_and_closes_the_sessions_dialogs(
    qtbot: Any, english: None, agent: FakeAgent, client: AgentClient, make_tray: Callable[..., TrayController],
) -> None:
    agent.set_status(attention=[ops.ATTN_POLICY_ACK_REQUIRED])
    agent.alerts = {"pending": [make_alert("a1")], "past": []}
    controller = make_tray(client, use_tray=False)
    qtbot.waitUntil(lambda: controller.policy_dialog is not None and controller.alerts_dialog is not None,
                    timeout=WAIT_MS)
    with qtbot.waitSignal(controller.notified, timeout=WAIT_MS) as notice:
        agent.end_session("hq:staff_suspended")
    shown = "HQ suspended the staff account S001 and ended its session. Ask your outlet manager."
    assert notice.args == ["Terminal Guard: signed out", shown]
    assert controller.window is not None and controller.window.note_label.text() == shown
    qtbot.waitUntil(lambda: controller.policy_dialog is None and controller.alerts_dialog is None, timeout=WAIT_MS)
    assert controller.signin_dialog is None, "signing in again would only be refused"


def test_no_notice_when_the_staff_sign_out_themselves_after_an_earlier_ended_session(
    qtbot: Any, english: None, agent: FakeAgent, client: AgentClient, make_tray: Callable[..., TrayController],
) -> None:
    agent.end_session(ops.SIGNOUT_SCREEN_LOCKED)
    agent.set_status(staff="S002", last_signout=agent.status["last_signout"])
    controller = make_tray(client)
    wait_state(qtbot, controller, TrayState.PROTECTED)
    with qtbot.assertNotEmitted(controller.notified, wait=4 * int(POLL_S * 1000)):
        controller.trigger("sign_out")
        wait_state(qtbot, controller, TrayState.NOT_SIGNED_IN)
    assert controller.signin_dialog is None


def test_no_notice_for_a_session_that_ended_before_the_tray_started(
    qtbot: Any, english: None, agent: FakeAgent, client: AgentClient, make_tray: Callable[..., TrayController],
) -> None:
    agent.set_status(staff=None, last_signout={"reason": ops.SIGNOUT_SHIFT_END, "at": 1.0, "staff": "S001"})
    with qtbot.assertNotEmitted(make_tray(client).notified, wait=4 * int(POLL_S * 1000)):
        pass
