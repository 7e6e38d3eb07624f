"""Every refusal the agent can answer the tray with has its own sentence in Chinese and English,
shown in the sign-in form with what the answer tells (who is signed in, this PC's outlet).

The codes are derived from the agent itself - the ERR_* constants of the local channel's
contract (ops.py), of the channel (protocol.py) and of its client (client.py) - and a scan of
the agent's sources checks that no handler answers with a code outside those constants.
"""

from __future__ import annotations

import ast
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from agent.alerts import AlertBook
from agent.binding import manager as binding_manager
from agent.binding.manager import BindingManager, DeviceAccess
from agent.channel_handlers import ChannelHandlers
from agent.localchannel import client as channel_client
from agent.localchannel import ops, protocol
from agent.localchannel.client import AgentClient
from agent.localchannel.default_policy import default_policy_text
from agent.localchannel.protocol import ChannelError
from agent.localchannel.server import LocalChannelServer
from agent.platform.fake import FakePlatform
from agent.policy import CurrentPolicy, Policy, parse_policy_body
from agent.spool import Spool
from agent.status_file import StatusFile
from gui import texts
from gui.dialogs.signin import SignInDialog
from gui.worker import CallRunner
from tests.agent.binding.live_hq import PASSWORD, LiveHq, live_hq
from tests.gui.agent_double import REPO, FakeAgent

WAIT_MS = 5000
CODE_MODULES: tuple[ModuleType, ...] = (ops, protocol, channel_client)
# How the agent's code raises a refusal to the local channel, and which argument is the code.
RAISERS = {"ChannelError": 0, "BindingError": 0, "AlertError": 0, "AgentError": 0, "error_response": 1}
CJK = re.compile(r"[\u4e00-\u9fff]")


def agent_error_codes() -> set[str]:
    return {value for module in CODE_MODULES for name, value in vars(module).items()
            if name.startswith("ERR_") and isinstance(value, str)}


def codes_in_agent_sources() -> set[str]:
    """Codes the agent's sources raise: string literals as they are, ERR_* names resolved."""
    constants = {name: value for module in CODE_MODULES for name, value in vars(module).items()
                 if name.startswith("ERR_")}
    found: set[str] = set()
    for path in sorted((REPO / "agent").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            position = RAISERS.get(name or "")
            if position is None or len(node.args) <= position:
                continue
            code = node.args[position]
            if isinstance(code, ast.Constant) and isinstance(code.value, str):
                found.add(code.value)
            elif isinstance(code, ast.Attribute | ast.Name):
                ref = code.attr if isinstance(code, ast.Attribute) else code.id
                if ref.startswith("ERR_"):
                    assert ref in constants, f"{path}: {ref} is not a constant of {CODE_MODULES}"
                    found.add(constants[ref])
    return found


# --- every code has a message ---------------------------------------------------------------------


def test_the_agent_sources_answer_only_with_declared_codes() -> None:
    raised = codes_in_agent_sources()
    assert {"already_signed_in", "session_expired", "policy_ack_required", "unknown_alert", "forbidden"} <= raised
    assert raised <= agent_error_codes()
    # HQ's sign-in refusals reach the tray translated into declared codes (the rest as hq_refused).
    assert set(binding_manager.SIGNIN_CODES.values()) <= agent_error_codes()


@pytest.mark.parametrize("code", sorted(agent_error_codes()))
def test_every_agent_error_code_has_its_own_message_in_both_languages(
    code: str, use_language: Callable[[str], None]
) -> None:
    assert f"error.{code}" in texts.MESSAGES, f"add error.{code} to gui/texts.py and translate it"
    use_language("en")
    english = texts.error_message(code, "a detail")
    assert english and "%" not in english and not CJK.search(english)
    use_language("zh_CN")
    chinese = texts.error_message(code, "a detail")
    assert chinese != english and CJK.search(chinese) and "%" not in chinese


def test_an_overlong_hq_reason_is_cut_short(qapp: QApplication, english: None) -> None:
    shown = texts.error_message(ops.ERR_HQ_REFUSED, "why " * 100)
    assert shown.startswith("HQ refused the sign-in (why why") and "…)" in shown
    assert len(shown) < texts.MAX_DETAIL_CHARS + 80


def test_a_detail_that_names_no_staff_id_gives_the_general_sentence(qapp: QApplication, english: None) -> None:
    assert texts.error_message(ops.ERR_ALREADY_SIGNED_IN, "").startswith("Someone else is still signed in")
    assert texts.error_message(ops.ERR_ALREADY_SIGNED_IN, "? is signed in here").startswith("Someone else")


# --- what the sign-in form shows ------------------------------------------------------------------

# code, the agent's detail, then the sentence in Chinese and in English (this PC's outlet: OUT-021)
SHOWN: list[tuple[str, str, str, str]] = [
    (ops.ERR_STAFF_LOCKED, "too many wrong passwords",
     "密码错误次数过多，该工号已被暂时锁定。请稍后再试，或联系网点负责人申请解锁。",
     "Too many wrong passwords: this staff account is locked for a while. "
     "Try again later, or ask your outlet manager to have it unlocked."),
    (ops.ERR_WRONG_OUTLET, "the staff member belongs to another outlet",
     "该工号不属于本电脑所在的网点（OUT-021）。请在您所属网点的电脑上登录，或联系网点负责人。",
     "This staff ID does not belong to this PC's outlet (OUT-021). "
     "Sign in on a PC at your own outlet, or ask your outlet manager."),
    (ops.ERR_ALREADY_SIGNED_IN, "S002 is signed in here; sign out first",
     "员工 S002 仍在本电脑上登录。每台电脑同一时间只能登录一人，请先由 S002 退出登录（托盘菜单中的“退出登录”）。",
     "S002 is still signed in on this PC. Only one person can be signed in at a time: "
     "S002 must sign out first (tray menu, Sign out)."),
    (ops.ERR_STAFF_DISABLED, "the staff account is disabled",
     "该工号已被总部停用，请联系网点负责人。",
     "This staff account has been disabled by HQ. Ask your outlet manager."),
    (ops.ERR_STAFF_SUSPENDED, "",
     "该员工账号已被暂停，请联系网点负责人。",
     "This staff account is suspended. Ask your outlet manager."),
    (ops.ERR_POLICY_ACK_REQUIRED, "",
     "请先阅读并确认数据安全守则。",
     "Please read and acknowledge the data-handling policy first."),
    (ops.ERR_SESSION_EXPIRED, "the session could not be refreshed",
     "本电脑未能及时连接总部，您的登录已过期，请重新登录。",
     "Your session has expired because this PC could not reach HQ in time. Please sign in again."),
    (ops.ERR_HQ_REFUSED, "the binding does not name this session",
     "总部拒绝了本次登录（the binding does not name this session）。请重试；如多次出现，请联系IT人员。",
     "HQ refused the sign-in (the binding does not name this session). Try again; if it keeps happening, tell IT."),
    (ops.ERR_HQ_UNREACHABLE, "connection refused",
     "暂时无法连接总部，请稍后再试。",
     "HQ cannot be reached right now. Try again in a minute."),
    (ops.ERR_BAD_CREDENTIALS, "",
     "工号或密码错误。",
     "Staff ID or password is wrong."),
    (protocol.ERR_UNKNOWN_OP, "unknown op 'signin'",
     "终端卫士服务与托盘程序版本不一致（unknown_op），请联系IT人员更新终端卫士。",
     "The Terminal Guard service and tray versions do not match (unknown_op). Tell IT to update Terminal Guard."),
]


def sign_in_as(qtbot: Any, runner: CallRunner, staff: str, password: str, outlet: str | None = "OUT-021"
               ) -> SignInDialog:
    dialog = SignInDialog(runner, outlet=outlet)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.keyClicks(dialog.staff_edit, staff)
    qtbot.keyClicks(dialog.password_edit, password)
    qtbot.mouseClick(dialog.sign_in_button, Qt.MouseButton.LeftButton)
    return dialog


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
@pytest.mark.parametrize(("code", "detail", "chinese", "english"), SHOWN, ids=[row[0] for row in SHOWN])
def test_the_sign_in_form_explains_each_refusal(
    qtbot: Any, use_language: Callable[[str], None], runner: CallRunner, agent: FakeAgent,
    lang: str, code: str, detail: str, chinese: str, english: str,
) -> None:
    use_language(lang)
    agent.signin_error = ChannelError(code, detail)
    dialog = sign_in_as(qtbot, runner, "S001", "secret")
    expected = chinese if lang == "zh_CN" else english
    qtbot.waitUntil(lambda: dialog.message.text() == expected, timeout=WAIT_MS)
    assert dialog.isVisible() and dialog.password_edit.text() == ""
    assert agent.calls_of(ops.OP_SIGNIN) == [{"staff": "S001", "password": "secret"}]


def test_wrong_outlet_without_a_known_outlet_still_says_what_to_do(
    qtbot: Any, use_language: Callable[[str], None], runner: CallRunner, agent: FakeAgent
) -> None:
    use_language("zh_CN")
    agent.signin_error = ChannelError(ops.ERR_WRONG_OUTLET, "")
    dialog = sign_in_as(qtbot, runner, "S001", "secret", outlet=None)
    qtbot.waitUntil(lambda: dialog.message.text() == (
        "该工号不属于本电脑所在的网点。请在您所属网点的电脑上登录，或联系网点负责人。"), timeout=WAIT_MS)


def test_a_refusal_that_needs_the_policy_asks_for_it_and_one_for_sign_in_does_not(
    qtbot: Any, english: None, runner: CallRunner, agent: FakeAgent
) -> None:
    agent.signin_error = ChannelError(ops.ERR_POLICY_ACK_REQUIRED, "")
    dialog = SignInDialog(runner)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.keyClicks(dialog.staff_edit, "S001")
    qtbot.keyClicks(dialog.password_edit, "secret")
    with qtbot.waitSignal(dialog.followup, timeout=WAIT_MS) as asked:
        qtbot.mouseClick(dialog.sign_in_button, Qt.MouseButton.LeftButton)
    assert asked.args == ["policy", "Please read and acknowledge the data-handling policy first."]
    agent.signin_error = ChannelError(ops.ERR_SESSION_EXPIRED, "")
    expired = sign_in_as(qtbot, runner, "S001", "secret")
    with qtbot.assertNotEmitted(expired.followup, wait=300):
        qtbot.waitUntil(lambda: expired.message.text().startswith("Your session has expired"), timeout=WAIT_MS)


# --- against the real agent and a real HQ ---------------------------------------------------------


@pytest.fixture
def hq(tmp_path: Path) -> Iterator[LiveHq]:
    with live_hq(tmp_path / "hq") as server:
        server.staff("S001")
        server.staff("S002")
        server.staff("S009", outlet="o2")
        yield server


@pytest.fixture
def real_agent(hq: LiveHq, tmp_path: Path, socket_dir: Path) -> Iterator[tuple[BindingManager, CallRunner]]:
    """The agent's own handlers and BindingManager behind the real local channel, signing in at HQ."""
    state = tmp_path / "agent"
    state.mkdir()
    client, key = hq.device("o1")
    access = DeviceAccess(client=client, key=key, outlet_id="o1")
    policy = CurrentPolicy(None, Policy(version=1, issued_at="-", body=parse_policy_body({"binding": {}}),
                                        document={}, signature=""))
    events: list[Any] = []
    manager = BindingManager(access=lambda: access, policy=policy,
                             policy_text=lambda: {**default_policy_text(), "version": 1}, put_event=events.append,
                             on_change=lambda staff: None, platform=FakePlatform(tmp_path), clock=time.time)
    handlers = ChannelHandlers(state_dir=state, status=StatusFile(state), spool=Spool(state / "spool.sqlite3"),
                               policy=policy, alerts=AlertBook(state, events.append), staff=lambda: None,
                               binding=manager)
    server = LocalChannelServer(str(socket_dir / "agent.sock"), handlers.table())
    server.start()
    runner = CallRunner(AgentClient(server.address, timeout_s=10.0))
    try:
        yield manager, runner
    finally:
        runner.shutdown()
        server.stop()


def test_real_refusals_from_hq_and_the_agent_are_explained(
    qtbot: Any, use_language: Callable[[str], None], hq: LiveHq, real_agent: tuple[BindingManager, CallRunner]
) -> None:
    manager, runner = real_agent
    use_language("zh_CN")
    elsewhere = sign_in_as(qtbot, runner, "S009", PASSWORD, outlet="o1")
    qtbot.waitUntil(lambda: elsewhere.message.text().startswith("该工号不属于本电脑所在的网点（o1）"), timeout=WAIT_MS)

    for _ in range(5):
        with pytest.raises(binding_manager.BindingError):
            manager.signin("S002", "not the password")
    locked = sign_in_as(qtbot, runner, "S002", PASSWORD)
    qtbot.waitUntil(lambda: locked.message.text().startswith("密码错误次数过多，该工号已被暂时锁定"), timeout=WAIT_MS)

    use_language("en")
    manager.signin("S001", PASSWORD)
    taken = sign_in_as(qtbot, runner, "S009", PASSWORD)
    qtbot.waitUntil(lambda: taken.message.text().startswith("S001 is still signed in on this PC."), timeout=WAIT_MS)
