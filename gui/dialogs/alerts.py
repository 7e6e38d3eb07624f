"""Alerts for the signed-in staff: pending ones to answer (acknowledge / explain), past ones to see.

An alert says what was found - rule, kind, program, how many records, when - never customer
data. High and critical alerts, and every explanation, need a written justification; the agent
enforces the same rule (ops.justification_problem), the dialog just says so early.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from agent.localchannel import ops
from gui import texts
from gui.dialogs.common import MessageLine, failure_message
from gui.model import AlertItem, AlertLists, StatusFormatError, answer_problem
from gui.worker import CallRunner

PENDING_TAB = 0
PAST_TAB = 1


class AlertsDialog(QDialog):
    answered = Signal(str)  # alert_id

    def __init__(self, runner: CallRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._runner = runner
        self._alerts = AlertLists()
        self._busy = False
        self.setWindowTitle(self.tr("Terminal Guard alerts"))
        self.setMinimumWidth(560)

        self.pending_list = QListWidget()
        self.past_list = QListWidget()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.pending_list, self.tr("&Waiting for your answer"))
        self.tabs.addTab(self.past_list, self.tr("&Past alerts"))
        self.empty_label = QLabel(self.tr("No alerts are waiting for your answer."))

        self.details = self._details_box()
        self.answer_box = self._answer_box()
        self.message = MessageLine()
        buttons = QDialogButtonBox()
        self.close_button = buttons.addButton(self.tr("Close"), QDialogButtonBox.ButtonRole.RejectRole)
        self.close_button.clicked.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.details)
        layout.addWidget(self.answer_box)
        layout.addWidget(self.message)
        layout.addWidget(buttons)

        self.pending_list.currentItemChanged.connect(self._selection_changed)
        self.past_list.currentItemChanged.connect(self._selection_changed)
        self.tabs.currentChanged.connect(self._selection_changed)
        self._selection_changed()

    # --- building ------------------------------------------------------------------------------

    def _details_box(self) -> QGroupBox:
        box = QGroupBox(self.tr("What was found"))
        form = QFormLayout(box)
        self.title_value = QLabel()
        self.severity_value = QLabel()
        self.category_value = QLabel()
        self.program_value = QLabel()
        self.rows_value = QLabel()
        self.time_value = QLabel()
        self.state_value = QLabel()
        for value in (self.title_value, self.program_value):
            value.setWordWrap(True)
        form.addRow(self.tr("Alert:"), self.title_value)
        form.addRow(self.tr("Severity:"), self.severity_value)
        form.addRow(self.tr("Kind:"), self.category_value)
        form.addRow(self.tr("Program:"), self.program_value)
        form.addRow(self.tr("Records involved:"), self.rows_value)
        form.addRow(self.tr("When:"), self.time_value)
        form.addRow(self.tr("Status:"), self.state_value)
        return box

    def _answer_box(self) -> QGroupBox:
        box = QGroupBox(self.tr("Your answer"))
        self.acknowledge_radio = QRadioButton(self.tr("A&cknowledge: I understand and it will not happen again"))
        self.explain_radio = QRadioButton(self.tr("&Explain: this was part of my work"))
        self.acknowledge_radio.setChecked(True)
        self.action_group = QButtonGroup(self)
        self.action_group.addButton(self.acknowledge_radio)
        self.action_group.addButton(self.explain_radio)
        self.justification_edit = QPlainTextEdit()
        self.justification_edit.setPlaceholderText(self.tr("Justification"))
        self.justification_edit.setTabChangesFocus(True)
        self.justification_edit.setFixedHeight(80)
        self.requirement_label = QLabel()
        self.requirement_label.setWordWrap(True)
        self.send_button = QPushButton(self.tr("&Send answer"))
        self.send_button.clicked.connect(self.submit)
        layout = QVBoxLayout(box)
        layout.addWidget(self.acknowledge_radio)
        layout.addWidget(self.explain_radio)
        layout.addWidget(self.justification_edit)
        layout.addWidget(self.requirement_label)
        layout.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignRight)
        self.action_group.buttonToggled.connect(self._update_answer_state)
        self.justification_edit.textChanged.connect(self._update_answer_state)
        return box

    # --- data ----------------------------------------------------------------------------------

    def refresh(self) -> None:
        self._runner.run(ops.OP_ALERTS, {}, self._loaded, self._load_failed)

    def _loaded(self, result: dict[str, Any]) -> None:
        try:
            self.set_alerts(AlertLists.from_result(result))
        except StatusFormatError:
            self.message.show_error(texts.error_message("internal"))

    def _load_failed(self, error: Exception) -> None:
        self.message.show_error(failure_message(error))

    def set_alerts(self, alerts: AlertLists) -> None:
        """Show these lists, keeping the selected alert selected when it is still there."""
        selected = self.selected_alert()
        self._alerts = alerts
        self._fill(self.pending_list, alerts.pending)
        self._fill(self.past_list, alerts.past)
        self.empty_label.setVisible(not alerts.pending)
        if selected is not None:
            self.select(selected.alert_id)
        elif alerts.pending:
            self.tabs.setCurrentIndex(PENDING_TAB)
            self.pending_list.setCurrentRow(0)
        self._selection_changed()

    def _fill(self, widget: QListWidget, alerts: tuple[AlertItem, ...]) -> None:
        widget.blockSignals(True)
        widget.clear()
        for alert in alerts:
            label = f"{texts.local_time(alert.created)}  [{texts.severity_name(alert.severity)}]  {alert.title}"
            item = QListWidgetItem(label)
            item.setData(Qt.ItemDataRole.UserRole, alert.alert_id)
            widget.addItem(item)
        widget.blockSignals(False)

    def select(self, alert_id: str) -> bool:
        for tab, widget in ((PENDING_TAB, self.pending_list), (PAST_TAB, self.past_list)):
            for row in range(widget.count()):
                if widget.item(row).data(Qt.ItemDataRole.UserRole) == alert_id:
                    self.tabs.setCurrentIndex(tab)
                    widget.setCurrentRow(row)
                    return True
        return False

    def selected_alert(self) -> AlertItem | None:
        widget = self.pending_list if self.tabs.currentIndex() == PENDING_TAB else self.past_list
        item = widget.currentItem()
        if item is None:
            return None
        alert_id = item.data(Qt.ItemDataRole.UserRole)
        return next((a for a in (*self._alerts.pending, *self._alerts.past) if a.alert_id == alert_id), None)

    def _selection_changed(self, *_: object) -> None:
        alert = self.selected_alert()
        self.details.setVisible(alert is not None)
        if alert is not None:
            self.title_value.setText(alert.title)
            self.severity_value.setText(texts.severity_name(alert.severity))
            self.category_value.setText(texts.category_name(alert.category))
            self.program_value.setText(alert.process_name or "—")
            self.rows_value.setText(str(alert.rows) if alert.rows is not None else "—")
            self.time_value.setText(texts.local_time(alert.created))
            self.state_value.setText(texts.alert_state_name(alert.state))
        self.answer_box.setVisible(alert is not None and alert.state == "pending")
        self._update_answer_state()

    # --- answering -----------------------------------------------------------------------------

    def chosen_action(self) -> str:
        return "explain" if self.explain_radio.isChecked() else "acknowledge"

    def _update_answer_state(self, *_: object) -> None:
        alert = self.selected_alert()
        if alert is None or alert.state != "pending":
            self.send_button.setEnabled(False)
            return
        if alert.needs_justification:
            requirement = self.tr("A written justification is required for high and critical alerts.")
        elif self.chosen_action() == "explain":
            requirement = self.tr("Write down why this happened.")
        else:
            requirement = self.tr("A justification is optional for this alert.")
        self.requirement_label.setText(requirement)
        problem = answer_problem(alert, self.chosen_action(), self.justification_edit.toPlainText())
        self.send_button.setEnabled(problem is None and not self._busy)

    def submit(self) -> None:
        alert = self.selected_alert()
        if alert is None or alert.state != "pending":
            return
        problem = answer_problem(alert, self.chosen_action(), self.justification_edit.toPlainText())
        if problem is not None:
            self.message.show_error(texts.render(problem))
            return
        self._busy = True
        self._update_answer_state()
        self.message.show_note(self.tr("Sending your answer…"))
        args = {"alert_id": alert.alert_id, "action": self.chosen_action(),
                "justification": self.justification_edit.toPlainText().strip()}
        self._runner.run(ops.OP_ANSWER_ALERT, args,
                         lambda result: self._answered(alert.alert_id, result), self._answer_failed)

    def _answered(self, alert_id: str, result: dict[str, Any]) -> None:
        self._busy = False
        self.justification_edit.clear()
        self.acknowledge_radio.setChecked(True)
        if result.get("queued"):
            self.message.show_note(self.tr("Answer saved; it will reach HQ when the connection is back."))
        else:
            self.message.show_note(self.tr("Answer sent to HQ."))
        self.answered.emit(alert_id)
        self.refresh()

    def _answer_failed(self, error: Exception) -> None:
        self._busy = False
        self.message.show_error(failure_message(error))
        self._update_answer_state()
