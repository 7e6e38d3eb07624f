"""Small pieces the dialogs share: the error line and turning agent failures into sentences."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QWidget

from agent.localchannel.client import AgentError, AgentUnavailable
from gui import texts


def failure_message(error: object) -> str:
    if isinstance(error, AgentUnavailable):
        return texts.error_message("agent_unavailable")
    if isinstance(error, AgentError):
        return texts.error_message(error.code)
    return texts.error_message("internal")


class MessageLine(QLabel):
    """A wrapped line that shows errors in red and notes in the normal colour; hidden when empty."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setVisible(False)

    def show_error(self, message: str) -> None:
        self.setStyleSheet("color: #c62828;")
        self._show(message)

    def show_note(self, message: str) -> None:
        self.setStyleSheet("")
        self._show(message)

    def clear_message(self) -> None:
        self.clear()
        self.setVisible(False)

    def _show(self, message: str) -> None:
        self.setText(message)
        self.setVisible(bool(message))
