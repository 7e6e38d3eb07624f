"""Diagnostics for IT: what the agent reports about itself, and a button to copy it into a ticket."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QVBoxLayout, QWidget

from agent import __version__
from gui import texts
from gui.dialogs.common import MessageLine
from gui.model import CONNECTING_VIEW, TrayView, diagnostics_text

DASH = "—"


class DiagnosticsWindow(QDialog):
    refresh_requested = Signal()

    def __init__(self, address: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._address = address
        self._view = CONNECTING_VIEW
        self.setWindowTitle(self.tr("Terminal Guard diagnostics"))
        self.setMinimumWidth(480)

        self.values: dict[str, QLabel] = {}
        form = QFormLayout()
        rows = [
            ("state", self.tr("Status:")),
            ("agent_version", self.tr("Agent version:")),
            ("device_id", self.tr("Device ID:")),
            ("outlet_id", self.tr("Outlet:")),
            ("hq_url", self.tr("HQ address:")),
            ("hq_reachable", self.tr("HQ reachable:")),
            ("last_heartbeat", self.tr("Last heartbeat:")),
            ("spool_depth", self.tr("Events waiting to be sent:")),
            ("policy_version", self.tr("Policy version:")),
            ("staff", self.tr("Signed-in staff:")),
            ("address", self.tr("Service address:")),
        ]
        for key, label in rows:
            value = QLabel()
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setWordWrap(True)
            self.values[key] = value
            form.addRow(label, value)
        self.message = MessageLine()

        buttons = QDialogButtonBox()
        self.copy_button = buttons.addButton(self.tr("&Copy diagnostics"), QDialogButtonBox.ButtonRole.ActionRole)
        self.refresh_button = buttons.addButton(self.tr("&Refresh"), QDialogButtonBox.ButtonRole.ActionRole)
        self.close_button = buttons.addButton(self.tr("Close"), QDialogButtonBox.ButtonRole.RejectRole)
        self.copy_button.clicked.connect(self.copy)
        self.refresh_button.clicked.connect(self.refresh_requested)
        self.close_button.clicked.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(buttons)
        self.set_view(CONNECTING_VIEW)

    def _yes_no(self, value: bool) -> str:
        return self.tr("Yes") if value else self.tr("No")

    def set_view(self, view: TrayView) -> None:
        self._view = view
        status = view.status
        shown: dict[str, str] = dict.fromkeys(self.values, DASH)
        shown["state"] = texts.render(view.headline)
        shown["address"] = self._address
        if status is not None:
            shown.update(
                agent_version=status.agent_version,
                device_id=status.device_id or DASH,
                outlet_id=status.outlet_id or DASH,
                hq_url=status.hq_url or DASH,
                hq_reachable=self._yes_no(status.hq_reachable),
                last_heartbeat=texts.local_time(status.last_heartbeat),
                spool_depth=str(status.spool_depth),
                policy_version=str(status.policy_version) if status.policy_version is not None else DASH,
                staff=status.staff or DASH,
            )
        for key, label in self.values.items():
            label.setText(shown[key])

    def diagnostics(self) -> str:
        return diagnostics_text(self._view, self._address, __version__)

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.diagnostics())
        self.message.show_note(self.tr("Diagnostics copied to the clipboard."))
