"""Loading the tray's translations. Source strings are English; Chinese lives in
gui/translations/terminal_guard_zh_CN.ts, compiled to the .qm next to it.

English sources because the code, logs and IT documentation are English and Qt falls back to
the source text when a translation is missing - a missing Chinese string then shows English, not
a key. To update after changing strings:

    .venv/bin/pyside6-lupdate $(find gui -name '*.py' | sort) -locations none -no-obsolete \\
        -ts gui/translations/terminal_guard_zh_CN.ts
    (translate the new entries in the .ts)
    .venv/bin/pyside6-lrelease gui/translations/terminal_guard_zh_CN.ts -qm gui/translations/terminal_guard_zh_CN.qm

tests/gui/test_tray_language.py fails when the .ts misses a string or the .qm is stale, and
tests/gui/test_tray_errors.py when an agent error code has no message.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QLocale, QTranslator

from gui.lang import EN, ZH_CN

log = logging.getLogger(__name__)

I18N_DIR = Path(__file__).resolve().parent / "translations"
CATALOGUE = "terminal_guard"
LOCALES = {ZH_CN: QLocale(QLocale.Language.Chinese, QLocale.Country.China), EN: QLocale(QLocale.Language.English)}


def qm_path(lang: str) -> Path:
    return I18N_DIR / f"{CATALOGUE}_{lang}.qm"


def install_translations(app: QCoreApplication, lang: str) -> list[QTranslator]:
    """Install the tray's and Qt's own translations for ``lang``; returns them for removal."""
    QLocale.setDefault(LOCALES.get(lang, LOCALES[ZH_CN]))
    if lang == EN:
        return []
    installed: list[QTranslator] = []
    own = QTranslator(app)
    if own.load(str(qm_path(lang))):
        app.installTranslator(own)
        installed.append(own)
    else:
        log.error("tray translation %s is missing; showing English", qm_path(lang))
    qt_base = QTranslator(app)  # Qt's own strings (context menus of text fields)
    if qt_base.load(f"qtbase_{lang}", QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)):
        app.installTranslator(qt_base)
        installed.append(qt_base)
    return installed


def remove_translations(app: QCoreApplication, translators: list[QTranslator]) -> None:
    for translator in translators:
        app.removeTranslator(translator)
