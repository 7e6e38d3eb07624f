"""The real tray on a real X server (Xvfb): docked into Debian's trayer when a tray host runs, its
small status window when none does. The tray runs in a child process (tests/gui/tray_host_probe.py)
because this suite's Qt is offscreen and a QApplication's platform cannot change.

Xvfb, trayer and x11-utils come from scripts/install-system-deps.sh (`make test` runs it): when
they are missing these tests fail rather than skip, so a CI without them cannot pass silently.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.agent_process import wait_until
from tests.gui.agent_double import ARTIFACTS, REPO

XVFB_START_S = 20.0
TRAYER_START_S = 20.0
PROBE_S = 60.0  # the child imports Qt and the agent's modules on a loaded machine
TRAYER = ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request", "--height", "24",
          "--transparent", "true"]
APP_CLASS = "terminal-guard-tray"  # WM_CLASS res_class: the application name gui/tray.py sets
# One line of `xwininfo -tree`: id "name": ("res_name" "res_class")  WxH+relX+relY  +absX+absY
TREE_LINE = re.compile(r'^\s*(0x[0-9a-f]+) (?:"(.*?)"|\(has no name\)): \((?:"(.*?)" "(.*?)")?\)\s+'
                       r"(\d+)x(\d+)\+(-?\d+)\+(-?\d+)\s+\+(-?\d+)\+(-?\d+)")


def need(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run scripts/install-system-deps.sh as root "
                    "(Debian packages xvfb, trayer, x11-utils)", pytrace=False)


def read_line(fd: int, timeout_s: float) -> str | None:
    """One line from a pipe, or None when it closes or the time runs out first."""
    data = b""
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            data += chunk
    return data.split(b"\n", 1)[0].decode()


@dataclass(frozen=True)
class Window:
    id: str
    name: str | None
    res_class: str | None
    width: int
    height: int
    x: int  # absolute, on the screen
    y: int


@dataclass
class XDisplay:
    number: int
    proc: subprocess.Popen[bytes]
    logs: Path

    @property
    def name(self) -> str:
        return f":{self.number}"

    def env(self, **extra: str) -> dict[str, str]:
        # An unreachable session bus: Qt must use the X11 tray protocol (XEmbed) even on a developer's
        # desktop whose session bus has a StatusNotifier host, and GTK must not look for one either.
        return {**os.environ, "DISPLAY": self.name, "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent", **extra}

    def xwininfo(self, *args: str) -> str:
        done = subprocess.run(["xwininfo", *args], capture_output=True, text=True, timeout=30, env=self.env())
        assert done.returncode == 0, done.stderr
        return done.stdout

    def tree(self, window: str = "-root") -> list[Window]:
        """Every window under ``window`` (an id, or -root), from `xwininfo -tree`."""
        args = ["-root"] if window == "-root" else ["-id", window]
        found = []
        for line in self.xwininfo(*args, "-tree").splitlines():
            match = TREE_LINE.match(line)
            if match:
                wid, name, _res_name, res_class, w, h, _rx, _ry, x, y = match.groups()
                found.append(Window(wid, name, res_class, int(w), int(h), int(x), int(y)))
        return found

    def viewable(self, window_id: str) -> bool:
        return "Map State: IsViewable" in self.xwininfo("-id", window_id)

    def panels(self) -> list[Window]:
        """trayer's panel windows: ("panel" "trayer")."""
        return [w for w in self.tree() if w.name == "panel" and w.res_class == "trayer"]


@pytest.fixture
def display(tmp_path: Path) -> Iterator[XDisplay]:
    need("Xvfb", "xwininfo")
    read_end, write_end = os.pipe()
    with open(tmp_path / "xvfb.log", "wb") as log:
        # -displayfd: Xvfb picks a free display itself and writes its number once it accepts clients.
        proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1024x768x24", "-nolisten",
                                 "tcp"], pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=log)
    os.close(write_end)
    try:
        number = read_line(read_end, XVFB_START_S)
    finally:
        os.close(read_end)
    if number is None:
        proc.kill()
        proc.wait(10)
        pytest.fail(f"Xvfb did not start within {XVFB_START_S:.0f} s:\n{(tmp_path / 'xvfb.log').read_text()}")
    try:
        yield XDisplay(int(number), proc, tmp_path)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def trayer(display: XDisplay) -> Iterator[Window]:
    """Debian's trayer docked at the top right; its panel window, once mapped (the tray selection is
    taken before the panel is shown)."""
    need("trayer")
    with open(display.logs / "trayer.log", "wb") as log:
        proc = subprocess.Popen(TRAYER, env=display.env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        def panel_shown() -> Window | None:
            if proc.poll() is not None:
                log = (display.logs / "trayer.log").read_text(errors="replace")
                raise AssertionError(f"trayer exited with {proc.returncode}:\n{log}")
            shown = [w for w in display.panels() if display.viewable(w.id)]
            return shown[0] if shown else None

        yield wait_until(panel_shown, TRAYER_START_S, interval=0.1, what="trayer's panel on the display")
    finally:
        proc.terminate()
        proc.wait(10)


class TrayProbe:
    """The real tray (tests/gui/tray_host_probe.py) running on the display, and its first report."""

    def __init__(self, display: XDisplay, screenshot: str | None, then: str = "exit") -> None:
        self.log = display.logs / "probe.log"
        shot = ["--screenshot", str(ARTIFACTS / f"{screenshot}.png")] if screenshot else []
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.gui.tray_host_probe", "--wait-s", "30", "--then", then, *shot],
                cwd=REPO, env=display.env(QT_QPA_PLATFORM="xcb"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=log)
        assert self.proc.stdout is not None
        line = read_line(self.proc.stdout.fileno(), PROBE_S)
        assert line, f"the tray printed no report within {PROBE_S:.0f} s (exit {self.proc.poll()}):\n{self.stderr()}"
        self.report: dict[str, Any] = json.loads(line)
        assert self.report["platform"] == "xcb", self.report
        assert self.report["state"] == "protected", self.report
        assert self.report.get("screenshot_saved", True) is True, self.report

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]

    def finish(self, timeout_s: float = 30) -> tuple[int, list[dict[str, Any]]]:
        """Close its standard input (its cue to end); the exit code and any further lines."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        try:
            code = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the tray did not end within {timeout_s:.0f} s:\n{self.stderr()}") from None
        return code, [json.loads(line) for line in self.proc.stdout.read().decode().splitlines() if line.strip()]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def start_probe(display: XDisplay) -> Iterator[Any]:
    started: list[TrayProbe] = []

    def start(screenshot: str | None, then: str = "exit") -> TrayProbe:
        started.append(TrayProbe(display, screenshot, then))
        return started[-1]

    yield start
    for probe in started:
        probe.kill()


def test_under_a_real_tray_host_the_icon_is_docked_into_the_panel(
    display: XDisplay, trayer: Window, start_probe: Any
) -> None:
    probe = start_probe("tray_host_xvfb_trayer")
    report = probe.report
    assert report["tray_available"] is True, report
    assert report["uses_tray_icon"] is True and report["window_visible"] is None, report
    assert report["icon_visible"] is True, report
    x, y, width, height = report["icon_geometry"]
    assert width > 0 and height > 0, report
    assert report["tooltip"].startswith("Terminal Guard: this PC is protected"), report
    # XEmbed: trayer reparented the tray's icon window into its panel, where Qt says the icon is.
    [icon] = [w for w in display.tree(trayer.id) if w.res_class == APP_CLASS]
    assert (icon.x, icon.y, icon.width, icon.height) == (x, y, width, height)
    assert display.viewable(icon.id)
    assert not [w for w in display.tree() if w.name == "Terminal Guard"], "no status window next to the icon"
    assert probe.finish() == (0, [])


def test_without_a_tray_host_the_status_window_stands_in(display: XDisplay, start_probe: Any) -> None:
    assert display.panels() == []
    probe = start_probe("tray_host_xvfb_no_tray")
    report = probe.report
    assert report["tray_available"] is False, report
    assert report["uses_tray_icon"] is False and report["icon_visible"] is None, report
    assert report["window_visible"] is True, report
    _, _, width, height = report["window_geometry"]
    assert width >= 360 and height > 0, report
    assert report["headline"] == "Terminal Guard: this PC is protected", report
    [window] = [w for w in display.tree() if w.name == "Terminal Guard" and w.res_class == APP_CLASS]
    assert display.viewable(window.id)
    assert window.width >= 360 and window.height > 0
    assert probe.finish() == (0, [])


@pytest.mark.parametrize("host", ["trayer", "no_tray_host"])
def test_quit_in_the_tray_menu_ends_the_app(
    request: pytest.FixtureRequest, display: XDisplay, start_probe: Any, host: str
) -> None:
    if host == "trayer":
        request.getfixturevalue("trayer")
    probe = start_probe(None, then="quit-menu")
    assert probe.report["uses_tray_icon"] is (host == "trayer"), probe.report
    code, later = probe.finish()
    assert (code, later) == (0, []), (
        f"Quit in the tray's menu did not end the app ({host}; exit {code}, {later}). Without a tray host the "
        "status window (gui/window.py StatusWindow.closeEvent) refuses every close, and Qt 6's "
        "QCoreApplication.quit(), which TrayController.trigger('quit') calls, gives up when a window refuses "
        "to close: staff cannot quit, and neither does Ctrl+C (gui/tray.py calls app.quit() too)."
    )
