"""The small status window used when the desktop has no system tray (some kiosk shells, RDP)."""

from __future__ import annotations

from PySide6.QtGui import QCloseEvent, QFont
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QPushButton, QVBoxLayout, QWidget

from gui import texts
from gui.icons import state_icon
from gui.model import CONNECTING_VIEW, TrayView

ICON_SIZE = 48


class StatusWindow(QWidget):
    def __init__(self, menu: QMenu, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.quitting = False
        self.setWindowTitle(self.tr("Terminal Guard"))
        self.icon_label = QLabel()
        self.headline_label = QLabel()
        font = QFont(self.headline_label.font())
        font.setBold(True)
        self.headline_label.setFont(font)
        self.headline_label.setWordWrap(True)
        self.details_label = QLabel()
        self.details_label.setWordWrap(True)
        self.note_label = QLabel()
        self.note_label.setWordWrap(True)
        self.note_label.setVisible(False)
        self.menu_button = QPushButton(self.tr("&Menu"))
        self.menu_button.setMenu(menu)

        text_column = QVBoxLayout()
        text_column.addWidget(self.headline_label)
        text_column.addWidget(self.details_label)
        top = QHBoxLayout()
        top.addWidget(self.icon_label)
        top.addLayout(text_column, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.note_label)
        layout.addWidget(self.menu_button)
        self.setMinimumWidth(360)
        self.set_view(CONNECTING_VIEW)

    def set_view(self, view: TrayView) -> None:
        self.icon_label.setPixmap(state_icon(view.state).pixmap(ICON_SIZE, ICON_SIZE))
        self.headline_label.setText(texts.render(view.headline))
        self.details_label.setText("\n".join(texts.render_lines(view.details)))
        self.setWindowIcon(state_icon(view.state))

    def show_note(self, message: str) -> None:
        """What the tray would say in a balloon; stays until the next note."""
        self.note_label.setText(message)
        self.note_label.setVisible(bool(message))

    def closeEvent(self, event: QCloseEvent) -> None:
        # Without a tray this window is the only way back in: closing it minimises instead, unless
        # the app is quitting (Qt 6's quit() gives up when a window refuses to close).
        if self.quitting:
            event.accept()
            return
        event.ignore()
        self.showMinimized()
