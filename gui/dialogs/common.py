"""Small pieces the dialogs share: the error line and turning agent failures into sentences."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QWidget

from agent.localchannel.client import AgentError, AgentUnavailable
from gui import texts
from gui.model import error_followup


def failure_message(error: object, *, outlet: str | None = None) -> str:
    """The sentence for a failed call; ``outlet`` (this PC's) completes a wrong_outlet refusal."""
    if isinstance(error, AgentUnavailable):
        return texts.error_message("agent_unavailable")
    if isinstance(error, AgentError):
        return texts.error_message(error.code, error.detail, outlet=outlet)
    return texts.error_message("internal")


def failure_followup(error: object) -> str | None:
    """The menu action a failed call calls for (gui/model.py ERROR_FOLLOWUPS), if any."""
    return error_followup(error.code) if isinstance(error, AgentError) else None


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
