"""``terminal-guard-tray``: the staff tray app (entry point).

    terminal-guard-tray [--address ADDR] [--lang zh_CN|en] [--poll-interval S] [--once]

``--once`` asks the agent once, prints the state as one JSON line
(``{"state", "tooltip", "lang", "address"}``) and exits 0: for installers' smoke tests and CI.
Errors go to stderr with exit code 2 (DESIGN.md, command-line contract).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence

from PySide6.QtCore import QCoreApplication, QLocale, QTimer
from PySide6.QtWidgets import QApplication

from agent.localchannel.address import default_client_address
from agent.localchannel.client import AgentClient
from gui.app import TrayController, tooltip_text
from gui.gc_guard import GuiThreadCollector
from gui.i18n import install_translations, remove_translations
from gui.lang import LANG_ENV, LANGUAGES, choose_language
from gui.model import derive_view, poll_agent
from gui.single_instance import SingleInstance
from gui.worker import DEFAULT_POLL_INTERVAL_S

APP_NAME = "terminal-guard-tray"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=APP_NAME, description="Terminal Guard tray app for outlet staff.")
    parser.add_argument("--address", help="the agent's local channel (default: $TG_AGENT_ADDRESS or the service's)")
    parser.add_argument("--lang", choices=LANGUAGES, help=f"UI language (default: ${LANG_ENV}, else the OS locale)")
    parser.add_argument("--poll-interval", type=float, default=DEFAULT_POLL_INTERVAL_S, metavar="S",
                        help="seconds between status polls (default: %(default)s)")
    parser.add_argument("--once", action="store_true", help="print the current state as JSON and exit")
    args = parser.parse_args(argv)
    if not 0.5 <= args.poll_interval <= 3600:
        parser.error(f"--poll-interval: expected 0.5 to 3600 seconds, got {args.poll_interval:g}")
    return args


def _application() -> QApplication:
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    app = QApplication([sys.argv[0] if sys.argv else APP_NAME])
    app.setApplicationName(APP_NAME)
    app.setQuitOnLastWindowClosed(False)  # closing a dialog must not end the tray
    return app


def run_once(client: AgentClient, lang: str) -> int:
    view = derive_view(poll_agent(client))
    line = {"state": str(view.state), "tooltip": tooltip_text(view), "lang": lang, "address": client.address}
    print(json.dumps(line, ensure_ascii=False), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    app = _application()
    lang = choose_language(args.lang, os.environ.get(LANG_ENV), QLocale.system().name())
    translators = install_translations(app, lang)
    try:
        client = AgentClient(args.address or default_client_address())
        if args.once:
            return run_once(client, lang)
        return _run_tray(app, client, lang, args.poll_interval)
    finally:
        remove_translations(app, translators)


def _run_tray(app: QApplication, client: AgentClient, lang: str, poll_interval_s: float) -> int:
    instance = SingleInstance()
    if not instance.acquire():
        message = QCoreApplication.translate("Tray", "Terminal Guard is already running for this user.")
        print(message, file=sys.stderr)
        return 0
    controller = TrayController(client, lang=lang, poll_interval_s=poll_interval_s)
    # Ctrl+C in a terminal: Python signal handlers only run when the interpreter gets control.
    signal.signal(signal.SIGINT, lambda *_: controller.quit())
    heartbeat = QTimer()
    heartbeat.start(500)
    heartbeat.timeout.connect(lambda: None)
    collector = GuiThreadCollector()  # Qt objects in reference cycles are freed on this thread only
    collector.start()
    try:
        controller.start()
        return app.exec()
    finally:
        controller.shutdown()
        collector.stop()
        instance.release()


if __name__ == "__main__":
    sys.exit(main())
