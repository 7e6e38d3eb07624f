"""Run the real tray on whatever display Qt is given and print, as one JSON line, what it became.

    QT_QPA_PLATFORM=xcb DISPLAY=:N python -m tests.gui.tray_host_probe [--wait-s 20]

The line comes once the icon (or the fallback window) is on screen, or after --wait-s; the tray
then keeps running until standard input closes, so the test can look at the X server meanwhile.
Then it ends: by ``QApplication.exit`` (``--then exit``), or as staff end it, by "Quit" in its own
menu (``--then quit-menu``); if that has not ended it within QUIT_GRACE_MS, a second line
``{"quit_ignored": true}`` is printed and the exit code is 3.
For tests/gui/test_tray_host_xvfb.py, which must run this in a child process: the rest of the
suite runs offscreen, and Qt's platform is fixed once a QApplication exists. The tray is built
as ``terminal-guard-tray`` builds it (gui.tray's application, TrayController deciding between
icon and window by itself) against tests/gui/agent_double.py behind a real local channel.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QSystemTrayIcon

from agent.localchannel.client import AgentClient
from agent.localchannel.server import LocalChannelServer
from gui import tray
from gui.app import TrayController
from gui.i18n import install_translations
from gui.model import TrayState
from tests.gui.agent_double import FakeAgent

POLL_S = 0.2
TICK_MS = 50
PAINT_MS = 300
QUIT_GRACE_MS = 5000
QUIT_IGNORED = 3


def settled(controller: TrayController) -> bool:
    """The first real view is rendered and the icon (or window) is placed on screen."""
    if controller.view.state is not TrayState.PROTECTED:
        return False
    if controller.tray is not None:
        return controller.tray.isVisible() and not controller.tray.geometry().isEmpty()
    return controller.window is not None and controller.window.isVisible()


def report(controller: TrayController, available: bool, waited_s: float) -> dict[str, Any]:
    icon, window = controller.tray, controller.window
    line: dict[str, Any] = {
        "platform": QGuiApplication.platformName(),
        "tray_available": available,
        "uses_tray_icon": icon is not None,
        "state": str(controller.view.state),
        "waited_s": round(waited_s, 3),
        "icon_visible": None, "icon_geometry": None, "tooltip": None,
        "window_visible": None, "window_geometry": None, "window_title": None,
    }
    if icon is not None:
        rect = icon.geometry()
        line.update(icon_visible=icon.isVisible(), icon_geometry=[rect.x(), rect.y(), rect.width(), rect.height()],
                    tooltip=icon.toolTip())
    if window is not None:
        rect = window.frameGeometry()
        line.update(window_visible=window.isVisible(),
                    window_geometry=[rect.x(), rect.y(), rect.width(), rect.height()],
                    window_title=window.windowTitle(), headline=window.headline_label.text())
    return line


def quit_from_menu(controller: TrayController) -> None:
    """What staff do: open the menu (rebuilt on opening) and choose Quit."""
    controller.menu.aboutToShow.emit()
    [action] = [a for a in controller.menu.actions() if a.data() == "quit"]
    action.trigger()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wait-s", type=float, default=20.0, help="how long the icon or window may take to show")
    parser.add_argument("--screenshot", type=Path, help="save the whole screen here once the line is printed")
    parser.add_argument("--then", choices=("exit", "quit-menu"), default="exit",
                        help="how to end once standard input closes (default: %(default)s)")
    args = parser.parse_args(argv)

    app = tray._application()
    install_translations(app, "en")
    socket_dir = Path(tempfile.mkdtemp(prefix="tg-probe-", dir="/tmp"))
    os.chmod(socket_dir, 0o755)  # noqa: S103 - as the agent's socket directory is in production
    server = LocalChannelServer(str(socket_dir / "agent.sock"), FakeAgent().handlers())
    server.start()
    available = QSystemTrayIcon.isSystemTrayAvailable()
    controller = TrayController(AgentClient(server.address, timeout_s=2.0), lang="en", poll_interval_s=POLL_S)
    controller.start()
    started = time.monotonic()
    line: dict[str, Any] | None = None
    stdin_closed = threading.Event()

    def wait_for_stdin_to_close() -> None:
        sys.stdin.read()
        stdin_closed.set()

    threading.Thread(target=wait_for_stdin_to_close, name="tg-probe-stdin", daemon=True).start()

    def check() -> None:
        nonlocal line
        waited = time.monotonic() - started
        if line is None and (settled(controller) or waited >= args.wait_s):
            line = current = report(controller, available, waited)
            # Printed one paint later, so that a screenshot shows the icon drawn, not just placed.
            QTimer.singleShot(PAINT_MS, lambda: emit(current))
        if line is not None and line.get("printed") and stdin_closed.is_set() and not line.get("ending"):
            line["ending"] = True
            if args.then == "exit":
                app.exit(0)
                return
            quit_from_menu(controller)
            QTimer.singleShot(QUIT_GRACE_MS, quit_ignored)

    def quit_ignored() -> None:
        print(json.dumps({"quit_ignored": True}), flush=True)
        app.exit(QUIT_IGNORED)

    def emit(line: dict[str, Any]) -> None:
        if args.screenshot is not None:
            args.screenshot.parent.mkdir(parents=True, exist_ok=True)
            line["screenshot_saved"] = QGuiApplication.primaryScreen().grabWindow(0).save(str(args.screenshot))
        print(json.dumps(line), flush=True)
        line["printed"] = True

    timer = QTimer()
    timer.timeout.connect(check)
    timer.start(TICK_MS)
    try:
        code = app.exec()
    finally:
        timer.stop()
        controller.shutdown()
        server.stop()
        shutil.rmtree(socket_dir, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
