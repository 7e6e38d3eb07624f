"""No user-facing string reaches a widget without a translation call (best effort, by AST)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.gui.agent_double import REPO

# Methods and constructors whose string arguments end up on screen.
TEXT_METHODS = frozenset({
    "setText", "setWindowTitle", "setToolTip", "setPlaceholderText", "setTitle", "setStatusTip",
    "setWhatsThis", "addAction", "addTab", "insertTab", "setTabText", "showMessage", "setPlainText",
    "setHtml", "addItem", "addItems", "insertItem", "setHeaderLabels", "setLabelText", "addRow",
    "insertRow", "addButton", "setAccessibleName", "setAccessibleDescription", "setInformativeText",
    "setDetailedText", "setItemText", "show_error", "show_note", "notify", "setPrefix", "setSuffix",
})
TEXT_CLASSES = frozenset({
    "QLabel", "QPushButton", "QCheckBox", "QRadioButton", "QGroupBox", "QAction", "QToolButton",
    "QMessageBox", "QListWidgetItem", "QTableWidgetItem", "QTreeWidgetItem", "QMenu", "QLineEdit",
    "QPlainTextEdit", "QTextEdit", "QCommandLinkButton",
})


def _has_words(text: str) -> bool:
    return any(char.isalpha() for char in text)


def _literal_text(node: ast.expr) -> str | None:
    """The words of a string built from literals in this expression (not inside another call)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value if _has_words(node.value) else None
    if isinstance(node, ast.JoinedStr):
        parts = "".join(v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
        return parts if _has_words(parts) else None
    if isinstance(node, ast.BinOp):
        return _literal_text(node.left) or _literal_text(node.right)
    if isinstance(node, ast.IfExp):
        return _literal_text(node.body) or _literal_text(node.orelse)
    return None


def _callee(node: ast.Call) -> str:
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    if isinstance(node.func, ast.Name):
        return node.func.id
    return ""


def untranslated_literals(source: str, filename: str) -> list[str]:
    problems = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        name = _callee(node)
        if name not in TEXT_METHODS and name not in TEXT_CLASSES:
            continue
        for argument in [*node.args, *(keyword.value for keyword in node.keywords)]:
            text = _literal_text(argument)
            if text is not None:
                problems.append(f"{filename}:{node.lineno}: {name}({text!r}) is not translated")
    return problems


def test_the_scanner_catches_literals_and_passes_translated_text() -> None:
    bad = '''
label = QLabel("Protected")
button.setText(f"Sign out {staff}")
window.setWindowTitle("Terminal " + "Guard")
tray.showMessage("已保护", body)
form.addRow("Staff ID:", edit)
box.show_error("Wrong password" if failed else "")
'''
    good = '''
label = QLabel(self.tr("Protected"))
button.setText(texts.render(Text("menu.sign_out", (staff,))))
window.setWindowTitle(QCoreApplication.translate("Tray", "Terminal Guard"))
label.setText("—")
label.setText(str(count))
label.setText(f"{when}  [{severity}]  {title}")
label.setStyleSheet("color: #c62828;")
'''
    assert len(untranslated_literals(bad, "bad.py")) == 6
    assert untranslated_literals(good, "good.py") == []


def test_gui_sources_pass_every_visible_string_through_translation() -> None:
    problems: list[str] = []
    files = sorted((REPO / "gui").rglob("*.py"))
    assert len(files) >= 10
    for path in files:
        problems += untranslated_literals(path.read_text("utf-8"), str(Path(path).relative_to(REPO)))
    assert problems == []
