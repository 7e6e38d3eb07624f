"""Policy acknowledgement: the agent's policy text, read to the end, confirmed with the staff ID.

"I acknowledge" stays disabled until the text has been scrolled to its end (once reached, it
stays reached) and the typed staff ID equals the signed-in staff. The agent signs the
acknowledgement and sends it to HQ, or queues it when HQ is away; either way the dialog closes.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from agent.localchannel import ops
from agent.localchannel.client import AgentError
from gui.dialogs.common import MessageLine, failure_followup, failure_message
from gui.lang import ZH_CN
from gui.model import can_acknowledge
from gui.worker import CallRunner


def pick_text(policy: dict[str, Any], lang: str) -> str:
    """The policy in the UI language, else in the other one (an HQ policy may have only one)."""
    zh, en = str(policy.get("text_zh") or ""), str(policy.get("text_en") or "")
    first, second = (zh, en) if lang == ZH_CN else (en, zh)
    return first or second


class PolicyDialog(QDialog):
    acknowledged = Signal(object)  # ops.AcknowledgePolicyResult
    followup = Signal(str, str)  # a menu key the refusal calls for (e.g. "sign_in"), and the message shown

    def __init__(self, runner: CallRunner, staff: str | None, lang: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self._staff = staff
        self._lang = lang
        self._policy: dict[str, Any] | None = None
        self._scrolled_to_end = False
        self._busy = False
        self.setWindowTitle(self.tr("Data-handling policy"))
        self.setMinimumSize(560, 480)

        intro = QLabel(self.tr("Read the whole policy, then type your staff ID and confirm."))
        intro.setWordWrap(True)
        self.text_view = QTextBrowser()
        self.text_view.setOpenLinks(False)
        self.scroll_hint = QLabel(self.tr("Scroll to the end of the policy to continue."))
        self.staff_edit = QLineEdit()
        self.staff_edit.setPlaceholderText(self.tr("Type your staff ID"))
        form = QFormLayout()
        form.addRow(self.tr("Your staff &ID:"), self.staff_edit)
        self.message = MessageLine()

        self.buttons = QDialogButtonBox()
        self.ack_button = self.buttons.addButton(self.tr("I &acknowledge"), QDialogButtonBox.ButtonRole.AcceptRole)
        self.close_button = self.buttons.addButton(self.tr("Close"), QDialogButtonBox.ButtonRole.RejectRole)
        self.ack_button.clicked.connect(self.submit)
        self.close_button.clicked.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.text_view, 1)
        layout.addWidget(self.scroll_hint)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)

        bar = self.text_view.verticalScrollBar()
        bar.valueChanged.connect(self._check_scrolled)
        bar.rangeChanged.connect(self._check_scrolled)
        self.staff_edit.textChanged.connect(self._update_buttons)
        if staff is None:
            self.staff_edit.setEnabled(False)
            self.message.show_note(self.tr("Sign in first to acknowledge the policy."))
        self._update_buttons()

    @property
    def policy_hash(self) -> str | None:
        return str(self._policy["hash"]) if self._policy else None

    @property
    def scrolled_to_end(self) -> bool:
        return self._scrolled_to_end

    def load(self) -> None:
        self.text_view.setPlainText(self.tr("Loading the policy…"))
        self._runner.run(ops.OP_POLICY_TEXT, {}, self._loaded, self._load_failed)

    def _loaded(self, result: dict[str, Any]) -> None:
        text = pick_text(result, self._lang)
        if not isinstance(result.get("hash"), str) or not text:
            self._load_failed(None)
            return
        self._policy = result
        self._scrolled_to_end = False
        self.text_view.setPlainText(text)
        self.text_view.verticalScrollBar().setValue(0)
        self._check_scrolled()

    def _load_failed(self, error: object) -> None:
        self.text_view.setPlainText("")
        self.message.show_error(failure_message(error))

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        QTimer.singleShot(0, self._check_scrolled)

    def _check_scrolled(self) -> None:
        # Only a laid-out, visible view knows its real scroll range; a text that fits entirely
        # (maximum 0) has been seen in full.
        if self._policy is not None and self.text_view.isVisible():
            bar = self.text_view.verticalScrollBar()
            if bar.value() >= bar.maximum():
                self._scrolled_to_end = True
        self._update_buttons()

    def _update_buttons(self) -> None:
        ready = can_acknowledge(self._scrolled_to_end, self.staff_edit.text(), self._staff)
        self.ack_button.setEnabled(ready and self._policy is not None and not self._busy)
        self.scroll_hint.setVisible(not self._scrolled_to_end)

    def submit(self) -> None:
        if not self.ack_button.isEnabled() or self._policy is None or self._staff is None:
            return
        self._busy = True
        self._update_buttons()
        self.message.show_note(self.tr("Saving your acknowledgement…"))
        args = {"staff": self._staff, "policy_hash": str(self._policy["hash"]),
                "typed_staff": self.staff_edit.text().strip()}
        self._runner.run(ops.OP_ACKNOWLEDGE_POLICY, args, self._succeeded, self._failed)

    def _succeeded(self, result: dict[str, Any]) -> None:
        self._busy = False
        self.acknowledged.emit(result)
        self.accept()

    def _failed(self, error: Exception) -> None:
        self._busy = False
        message = failure_message(error)
        self.message.show_error(message)
        if isinstance(error, AgentError) and error.code == ops.ERR_POLICY_CHANGED:
            self._policy = None  # the new text must be read to its end again
            self.load()
        self._update_buttons()
        followup = failure_followup(error)
        if followup is not None and followup != "policy":
            self.followup.emit(followup, message)
