"""Languages and the command line: Chinese by default, English on request, shipped translations
complete and compiled, `--once` and one instance per user, as real processes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import psutil
from PySide6.QtWidgets import QApplication

from agent.localchannel.server import LocalChannelServer
from gui import texts
from gui.dialogs.signin import SignInDialog
from gui.i18n import I18N_DIR, qm_path
from gui.single_instance import SingleInstance
from gui.worker import CallRunner
from tests.gui.agent_double import REPO, FakeAgent

TS_FILE = I18N_DIR / "terminal_guard_zh_CN.ts"
VENV_BIN = Path(sys.executable).parent


def tray_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("TG_LANG", "LANG", "LC_ALL", "LANGUAGE")}
    env.update({"QT_QPA_PLATFORM": "offscreen", "LANG": "C.UTF-8", **extra})
    return env


def run_tray(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / "terminal-guard-tray"), *args], capture_output=True, text=True,
                          env=env or tray_env(), timeout=timeout, cwd=REPO)


def once(address: str, *args: str, **env: str) -> dict[str, Any]:
    result = run_tray("--once", "--address", address, *args, env=tray_env(**env))
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    return dict(json.loads(line))


# --- language choice, as the user sees it ------------------------------------------------------


def test_chinese_is_the_default(agent_server: LocalChannelServer) -> None:
    shown = once(agent_server.address)
    assert shown["lang"] == "zh_CN"
    assert shown["state"] == "protected"
    assert shown["tooltip"] == "终端卫士：本电脑已受保护\n已登录：S001"


def test_english_with_the_override(agent_server: LocalChannelServer) -> None:
    shown = once(agent_server.address, "--lang", "en")
    assert shown["tooltip"] == "Terminal Guard: this PC is protected\nSigned in as S001"


def test_english_from_the_environment_and_the_os_locale(agent_server: LocalChannelServer) -> None:
    assert once(agent_server.address, TG_LANG="en")["lang"] == "en"
    assert once(agent_server.address, LANG="en_US.UTF-8")["lang"] == "en"
    assert once(agent_server.address, "--lang", "zh_CN", LANG="en_US.UTF-8")["lang"] == "zh_CN"


def test_agent_not_running_is_said_plainly_in_both_languages(socket_dir: Path) -> None:
    absent = str(socket_dir / "absent.sock")
    assert once(absent)["tooltip"] == "终端卫士服务未运行\n本电脑当前未受保护，请联系IT人员。"
    shown = once(absent, "--lang", "en")
    assert shown["state"] == "agent_not_running"
    assert shown["tooltip"] == (
        "Terminal Guard service is not running\nThis PC is not protected. Please tell your IT contact."
    )


def test_dialog_strings_switch_language_in_process(
    qtbot: Any, use_language: Any, runner: CallRunner, agent: FakeAgent
) -> None:
    use_language("zh_CN")
    chinese = SignInDialog(runner)
    qtbot.addWidget(chinese)
    assert chinese.windowTitle() == "登录终端卫士"
    assert chinese.sign_in_button.text() == "登录(&S)"
    assert texts.error_message("bad_credentials") == "工号或密码错误。"
    use_language("en")
    english = SignInDialog(runner)
    qtbot.addWidget(english)
    assert english.windowTitle() == "Sign in to Terminal Guard"
    assert texts.error_message("bad_credentials") == "Staff ID or password is wrong."


def test_unknown_error_codes_are_named(qapp: QApplication, english: None) -> None:
    assert texts.error_message("weird_code") == "The service refused the request (weird_code)."


# --- the shipped translation files ---------------------------------------------------------------


def messages_of(ts: Path) -> dict[tuple[str, str], tuple[str, str | None]]:
    found = {}
    for context in ET.parse(ts).getroot().iter("context"):  # noqa: S314 - our own file
        name = context.findtext("name") or ""
        for message in context.iter("message"):
            translation = message.find("translation")
            assert translation is not None
            found[(name, message.findtext("source") or "")] = (translation.text or "", translation.get("type"))
    return found


def test_every_source_string_has_a_finished_chinese_translation(tmp_path: Path) -> None:
    """lupdate over the gui sources must find nothing the shipped .ts lacks."""
    fresh = tmp_path / "fresh.ts"
    shutil.copy(TS_FILE, fresh)
    sources = sorted(str(path) for path in (REPO / "gui").rglob("*.py"))
    subprocess.run([str(VENV_BIN / "pyside6-lupdate"), *sources, "-locations", "none", "-no-obsolete",
                    "-ts", str(fresh)], check=True, capture_output=True)
    shipped, current = messages_of(TS_FILE), messages_of(fresh)
    assert set(current) == set(shipped), "run lupdate (see gui/i18n.py) and translate the new strings"
    unfinished = [key for key, (text, kind) in current.items() if kind is not None or not text]
    assert unfinished == []
    assert len(current) > 100


def test_translations_keep_placeholders_and_mnemonics() -> None:
    for (context, source), (translation, _) in messages_of(TS_FILE).items():
        assert sorted(re.findall(r"%\d", source)) == sorted(re.findall(r"%\d", translation)), (context, source)
        assert ("&" in source) == ("&" in translation), (context, source)


def test_shipped_qm_is_compiled_from_the_shipped_ts(tmp_path: Path) -> None:
    rebuilt = tmp_path / "rebuilt.qm"
    subprocess.run([str(VENV_BIN / "pyside6-lrelease"), str(TS_FILE), "-qm", str(rebuilt)],
                   check=True, capture_output=True)
    assert rebuilt.read_bytes() == qm_path("zh_CN").read_bytes(), "run pyside6-lrelease (see gui/i18n.py)"


def test_every_text_key_the_model_uses_exists() -> None:
    source = (REPO / "gui" / "model.py").read_text("utf-8")
    used = set(re.findall(r'Text\("([a-z_.]+)"', source))
    used |= {key for key in re.findall(r'"((?:menu|state|detail|signin|alerts|signout)\.[a-z_]+)"', source)}
    missing = sorted(key for key in used if key not in texts.MESSAGES)
    assert missing == []


# --- command line --------------------------------------------------------------------------------


def test_bad_arguments_exit_2_with_a_message_on_stderr() -> None:
    result = run_tray("--poll-interval", "0")
    assert result.returncode == 2
    assert "--poll-interval" in result.stderr
    result = run_tray("--lang", "fr")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_help_works() -> None:
    result = run_tray("--help")
    assert result.returncode == 0 and "--once" in result.stdout


def test_one_instance_per_user(agent_server: LocalChannelServer) -> None:
    runtime = Path(tempfile.mkdtemp(prefix="tg-tray-rt-"))
    try:
        env = tray_env(XDG_RUNTIME_DIR=str(runtime), TG_LANG="en")
        first = subprocess.Popen([str(VENV_BIN / "terminal-guard-tray"), "--address", agent_server.address],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            lock = runtime / "terminal-guard-tray.lock"
            deadline = time.monotonic() + 30
            while not lock.exists():
                assert first.poll() is None, first.communicate()
                assert time.monotonic() < deadline, "first tray never took its lock"
                time.sleep(0.1)
            second = run_tray("--address", agent_server.address, env=env, timeout=30)
            assert second.returncode == 0
            assert "already running" in second.stderr
            assert first.poll() is None, "the first tray keeps running"
        finally:
            first.terminate()
            first.wait(10)
        # A lock left by a dead tray does not lock the user out.
        holder = SingleInstance(runtime / "terminal-guard-tray.lock")
        assert holder.acquire()
        holder.release()
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def test_single_instance_in_process(tmp_path: Path) -> None:
    first, second = SingleInstance(tmp_path / "x.lock"), SingleInstance(tmp_path / "x.lock")
    assert first.acquire()
    # QLockFile is per process: a second holder in this process is refused too.
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


def test_running_tray_keeps_polling_the_agent(agent: FakeAgent, agent_server: LocalChannelServer) -> None:
    """The real tray process polls the agent's channel. Its memory is a benchmark, not a test:
    it moves with the fonts installed (CJK fonts add megabytes), so it is measured in
    bench/bench_tray_memory.py, never asserted here."""
    runtime = Path(tempfile.mkdtemp(prefix="tg-tray-rt-"))
    tray = subprocess.Popen([str(VENV_BIN / "terminal-guard-tray"), "--address", agent_server.address,
                             "--poll-interval", "0.5"], env=tray_env(XDG_RUNTIME_DIR=str(runtime)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while len(agent.calls_of("status")) < 4:
            assert tray.poll() is None, "the tray exited"
            assert time.monotonic() < deadline, "the tray did not poll the agent"
            time.sleep(0.1)
        assert psutil.Process(tray.pid).is_running()
    finally:
        tray.terminate()
        tray.wait(10)
        shutil.rmtree(runtime, ignore_errors=True)
