"""The tray itself: renders the current TrayView and opens dialogs; decides nothing on its own.

Polls arrive as signals from the poller thread; each one becomes a new view (gui/model.py),
which sets the icon, tooltip, status window and open dialogs. The menu is rebuilt from the view
every time it opens. Without a system tray a small status window stands in for the icon.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Signal
from PySide6.QtGui import QAction, QCursor, QFont
from PySide6.QtWidgets import QDialog, QMenu, QSystemTrayIcon

from agent.localchannel import ops
from agent.localchannel.client import AgentClient
from gui import texts
from gui.dialogs.alerts import AlertsDialog
from gui.dialogs.common import failure_followup, failure_message
from gui.dialogs.diagnostics import DiagnosticsWindow
from gui.dialogs.policy import PolicyDialog
from gui.dialogs.signin import SignInDialog
from gui.icons import state_icon
from gui.model import (
    CONNECTING_VIEW,
    AlertItem,
    PollResult,
    SessionEnd,
    Text,
    TrayView,
    derive_view,
    menu_entries,
    new_alerts,
    signout_notice,
)
from gui.window import StatusWindow
from gui.worker import DEFAULT_POLL_INTERVAL_S, CallRunner, StatusPoller

log = logging.getLogger(__name__)

TOOLTIP_DETAIL_LINES = 2  # Windows cuts tray tooltips at 127 characters
NOTIFY_MS = 8000


def tooltip_text(view: TrayView) -> str:
    lines = [texts.render(view.headline), *texts.render_lines(view.details[:TOOLTIP_DETAIL_LINES])]
    return "\n".join(lines)


class TrayController(QObject):
    view_changed = Signal(object)  # TrayView, after it has been rendered
    notified = Signal(str, str)  # title, message: what a balloon/status note just said

    def __init__(self, client: AgentClient, *, lang: str, poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
                 use_tray: bool | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.client = client
        self.lang = lang
        self.view = CONNECTING_VIEW
        self.runner = CallRunner(client, self)
        self.poller = StatusPoller(client, poll_interval_s, self)
        self.poller.polled.connect(self._on_polled)
        self.menu = QMenu()
        self.menu.aboutToShow.connect(self.rebuild_menu)
        if use_tray is None:
            use_tray = QSystemTrayIcon.isSystemTrayAvailable()
        self.tray: QSystemTrayIcon | None = None
        self.window: StatusWindow | None = None
        if use_tray:
            self.tray = QSystemTrayIcon(self)
            self.tray.setContextMenu(self.menu)
            self.tray.activated.connect(self._activated)
        else:
            self.window = StatusWindow(self.menu)
        self.signin_dialog: SignInDialog | None = None
        self.policy_dialog: PolicyDialog | None = None
        self.alerts_dialog: AlertsDialog | None = None
        self.diagnostics_window: DiagnosticsWindow | None = None
        self._seen_alerts: set[str] | None = None
        # The agent's last_signout at the previous status; unknown until the first one, which is
        # only remembered: a session that ended before the tray started is old news.
        self._seen_signout: SessionEnd | None = None
        self._status_seen = False
        self.rebuild_menu()
        self._render(self.view)

    # --- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self.tray is not None:
            self.tray.show()
        if self.window is not None:
            self.window.show()
        self.poller.start()

    def shutdown(self) -> None:
        self.poller.stop()
        self.runner.shutdown()
        for dialog in (self.signin_dialog, self.policy_dialog, self.alerts_dialog, self.diagnostics_window):
            if dialog is not None:
                dialog.close()
        if self.tray is not None:
            self.tray.hide()
        if self.window is not None:
            self.window.hide()

    def refresh(self) -> None:
        self.poller.refresh()

    # --- views -----------------------------------------------------------------------------------

    def _on_polled(self, result: PollResult) -> None:
        previous, view = self.view, derive_view(result)
        self.view = view
        self._render(view)
        self._react_to_session_end(view)
        self._react(previous, view)
        self.view_changed.emit(view)

    def _render(self, view: TrayView) -> None:
        icon = state_icon(view.state)
        if self.tray is not None:
            self.tray.setIcon(icon)
            self.tray.setToolTip(tooltip_text(view))
        if self.window is not None:
            self.window.set_view(view)
        if self.diagnostics_window is not None:
            self.diagnostics_window.set_view(view)
        if self.alerts_dialog is not None and view.alerts is not None:
            self.alerts_dialog.set_alerts(view.alerts)

    def _react(self, previous: TrayView, view: TrayView) -> None:
        """Open what staff must see: the policy when it newly needs acknowledging, new alerts."""
        needs_ack = ops.ATTN_POLICY_ACK_REQUIRED in view.attention
        if needs_ack and ops.ATTN_POLICY_ACK_REQUIRED not in previous.attention:
            self.open_policy()
        if view.alerts is None:
            self._seen_alerts = None  # signed out: the next staff starts fresh
            return
        if self._seen_alerts is None:
            self._seen_alerts = view.alerts.ids()
            if view.alerts.pending:
                self.open_alerts()
            return
        notify, ask = new_alerts(self._seen_alerts, view.alerts)
        self._seen_alerts |= view.alerts.ids()
        for alert in notify:
            self.notify(self.tr("Terminal Guard alert"), self._alert_summary(alert))
        if ask:
            self.open_alerts(ask[0].alert_id)

    def _react_to_session_end(self, view: TrayView) -> None:
        """Say why the agent ended a session (idle, screen lock, shift end, HQ...) and close what
        belonged to it; open the sign-in form where signing in again is the way on."""
        status = view.status
        if status is None:
            return  # the agent is away or answered an error: keep what was seen before
        seen, self._seen_signout = self._seen_signout, status.last_signout
        first, self._status_seen = not self._status_seen, True
        notice = None if first else signout_notice(seen, status)
        if notice is None:
            return
        message = texts.render(notice.text)
        # The ended session's alerts and policy are not for whoever sits down next.
        for dialog in (self.alerts_dialog, self.policy_dialog):
            if dialog is not None:
                dialog.close()
        self.notify(texts.render(Text("signout.title")), message)
        if notice.followup == "sign_in":
            self.open_signin(message)

    def _alert_summary(self, alert: AlertItem) -> str:
        if alert.process_name:
            return f"{alert.title} ({alert.process_name})"
        return alert.title

    def notify(self, title: str, message: str) -> None:
        if self.tray is not None:
            self.tray.showMessage(title, message, state_icon(self.view.state), NOTIFY_MS)
        if self.window is not None:
            self.window.show_note(message)
        self.notified.emit(title, message)

    # --- menu ------------------------------------------------------------------------------------

    def rebuild_menu(self) -> None:
        self.menu.clear()
        for entry in menu_entries(self.view):
            action = QAction(texts.render(entry.text), self.menu)
            action.setData(entry.key)
            action.setEnabled(entry.enabled)
            if entry.emphasized or entry.key == "header":
                font = QFont(action.font())
                font.setBold(True)
                action.setFont(font)
            if entry.key not in ("header", "detail"):
                action.triggered.connect(partial(self.trigger, entry.key))
            if entry.key in ("sign_in", "sign_out", "diagnostics") and self.menu.actions():
                self.menu.addSeparator()
            self.menu.addAction(action)

    def trigger(self, key: str) -> None:
        handlers: dict[str, Callable[[], object]] = {
            "sign_in": self.open_signin,
            "sign_out": self.sign_out,
            "policy": self.open_policy,
            "alerts": self.open_alerts,
            "diagnostics": self.open_diagnostics,
            "refresh": self.refresh,
            "quit": self.quit,
        }
        handlers[key]()

    def quit(self) -> None:
        """Menu "Quit" and Ctrl+C: the status window, which otherwise only minimises, lets go."""
        if self.window is not None:
            self.window.quitting = True
        QCoreApplication.quit()

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.menu.popup(QCursor.pos())  # Windows shows the context menu on right click only
        elif reason == QSystemTrayIcon.ActivationReason.DoubleClick:
            self.open_diagnostics()

    # --- dialogs ---------------------------------------------------------------------------------

    @staticmethod
    def _present(dialog: QDialog) -> None:
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()

    def open_signin(self, reason: str | None = None) -> SignInDialog:
        """The sign-in form; ``reason`` (why staff are back here, e.g. an expired session) shown in it."""
        if self.signin_dialog is None:
            outlet = self.view.status.outlet_id if self.view.status else None
            self.signin_dialog = SignInDialog(self.runner, outlet=outlet)
            self.signin_dialog.signed_in.connect(self._signed_in)
            self.signin_dialog.followup.connect(self._follow_up)
            self.signin_dialog.finished.connect(lambda _code: self._forget("signin_dialog"))
        if reason:
            self.signin_dialog.message.show_error(reason)
        self._present(self.signin_dialog)
        return self.signin_dialog

    def _follow_up(self, key: str, message: str) -> None:
        """An agent refusal that needs a step: back to the sign-in form (the session is gone, so a
        policy dialog for it closes) or on to the policy acknowledgement."""
        if key == "sign_in":
            if self.policy_dialog is not None:
                self.policy_dialog.close()
            self.open_signin(message)
        elif key == "policy":
            self.open_policy()
        self.refresh()

    def _signed_in(self, staff: str) -> None:
        self.notify(self.tr("Terminal Guard"), texts.render(Text("detail.signed_in_as", (staff,))))
        self.refresh()

    def sign_out(self) -> None:
        self.runner.run(ops.OP_SIGNOUT, {}, lambda _result: self.refresh(), self._call_failed)

    def _call_failed(self, error: Exception) -> None:
        message = failure_message(error)
        self.notify(self.tr("Terminal Guard"), message)
        followup = failure_followup(error)
        if followup is not None:
            self._follow_up(followup, message)

    def open_policy(self) -> PolicyDialog:
        if self.policy_dialog is None:
            self.policy_dialog = PolicyDialog(self.runner, self.view.staff, self.lang)
            self.policy_dialog.acknowledged.connect(self._policy_acknowledged)
            self.policy_dialog.followup.connect(self._follow_up)
            self.policy_dialog.finished.connect(lambda _code: self._forget("policy_dialog"))
            self.policy_dialog.load()
        self._present(self.policy_dialog)
        return self.policy_dialog

    def _policy_acknowledged(self, result: dict[str, Any]) -> None:
        if result.get("queued"):
            message = self.tr("Acknowledgement saved; it will reach HQ when the connection is back.")
        else:
            message = self.tr("Thank you. Your acknowledgement was sent to HQ.")
        self.notify(self.tr("Terminal Guard"), message)
        self.refresh()

    def open_alerts(self, alert_id: str | None = None) -> AlertsDialog:
        if self.alerts_dialog is None:
            self.alerts_dialog = AlertsDialog(self.runner)
            self.alerts_dialog.answered.connect(lambda _alert_id: self.refresh())
            self.alerts_dialog.finished.connect(lambda _code: self._forget("alerts_dialog"))
            if self.view.alerts is not None:
                self.alerts_dialog.set_alerts(self.view.alerts)
            self.alerts_dialog.refresh()
        if alert_id is not None:
            self.alerts_dialog.select(alert_id)
        self._present(self.alerts_dialog)
        return self.alerts_dialog

    def open_diagnostics(self) -> DiagnosticsWindow:
        if self.diagnostics_window is None:
            self.diagnostics_window = DiagnosticsWindow(self.client.address)
            self.diagnostics_window.refresh_requested.connect(self.refresh)
            self.diagnostics_window.finished.connect(lambda _code: self._forget("diagnostics_window"))
        self.diagnostics_window.set_view(self.view)
        self._present(self.diagnostics_window)
        return self.diagnostics_window

    def _forget(self, name: str) -> None:
        dialog = getattr(self, name)
        setattr(self, name, None)
        if dialog is not None:
            dialog.deleteLater()

