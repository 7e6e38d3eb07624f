"""Sign-in: staff ID + password, sent to the agent (which asks HQ), errors shown in place."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

from agent.localchannel import ops
from gui import texts
from gui.dialogs.common import MessageLine, failure_followup, failure_message
from gui.model import signin_problem
from gui.worker import CallRunner

MAX_STAFF_ID = 64


class SignInDialog(QDialog):
    signed_in = Signal(str)  # the staff id the agent signed in
    followup = Signal(str, str)  # a menu key the refusal calls for (e.g. "policy"), and the message shown

    def __init__(self, runner: CallRunner, parent: QWidget | None = None, *, outlet: str | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self._outlet = outlet  # this PC's outlet, named when HQ says the staff belongs elsewhere
        self._busy = False
        self.setWindowTitle(self.tr("Sign in to Terminal Guard"))

        intro = QLabel(self.tr("Sign in with your own staff ID. Never use or lend another person's account."))
        intro.setWordWrap(True)
        self.staff_edit = QLineEdit()
        self.staff_edit.setMaxLength(MAX_STAFF_ID)
        self.staff_edit.setPlaceholderText(self.tr("Staff ID"))
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setPlaceholderText(self.tr("Password"))
        form = QFormLayout()
        form.addRow(self.tr("&Staff ID:"), self.staff_edit)
        form.addRow(self.tr("&Password:"), self.password_edit)
        self.message = MessageLine()

        self.buttons = QDialogButtonBox()
        self.sign_in_button = self.buttons.addButton(self.tr("&Sign in"), QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton(self.tr("Cancel"), QDialogButtonBox.ButtonRole.RejectRole)
        self.sign_in_button.setDefault(True)
        self.sign_in_button.clicked.connect(self.submit)
        self.cancel_button.clicked.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)

        self.staff_edit.textChanged.connect(self._update_buttons)
        self.password_edit.textChanged.connect(self._update_buttons)
        self._update_buttons()

    def _update_buttons(self) -> None:
        filled = bool(self.staff_edit.text().strip()) and bool(self.password_edit.text())
        self.sign_in_button.setEnabled(filled and not self._busy)

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.staff_edit.setEnabled(not busy)
        self.password_edit.setEnabled(not busy)
        self._update_buttons()

    def submit(self) -> None:
        staff = self.staff_edit.text().strip()
        problem = signin_problem(staff, self.password_edit.text())
        if problem is not None:
            self.message.show_error(texts.render(problem))
            return
        self.message.show_note(self.tr("Signing in…"))
        self._set_busy(True)
        args = {"staff": staff, "password": self.password_edit.text()}
        self._runner.run(ops.OP_SIGNIN, args, self._succeeded, self._failed)

    def _succeeded(self, result: dict[str, object]) -> None:
        self._set_busy(False)
        self.password_edit.clear()
        staff = result.get("staff")
        self.signed_in.emit(staff if isinstance(staff, str) and staff else self.staff_edit.text().strip())
        self.accept()

    def _failed(self, error: Exception) -> None:
        self._set_busy(False)
        self.password_edit.clear()
        message = failure_message(error, outlet=self._outlet)
        self.message.show_error(message)
        self.password_edit.setFocus()
        followup = failure_followup(error)
        if followup is not None and followup != "sign_in":  # this form is the sign-in already
            self.followup.emit(followup, message)
