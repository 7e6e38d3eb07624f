"""XLSX/XLSM workbooks, every sheet, streamed with openpyxl's read-only mode.

Read-only mode parses sheet XML incrementally; it does load the shared-string table whole, which
is bounded by the archive budget checked before opening.

openpyxl is imported on the first workbook: it costs about 5 MB and 80 ms, and the service may
never see a workbook at all.
"""

from __future__ import annotations

import zipfile
from typing import BinaryIO

from agent.exports.cells import cell_text
from agent.exports.limits import Limits, Unreadable, safe_reason
from agent.exports.sink import RowSink
from agent.exports.zip_guard import UnpackBudget, check_archive

# openpyxl and its XML parser raise a wide range of types on damaged files.
_DAMAGED = (zipfile.BadZipFile, KeyError, ValueError, TypeError, IndexError, AttributeError, EOFError,
            SyntaxError, zipfile.LargeZipFile, NotImplementedError)


def read_xlsx(stream: BinaryIO, archive: zipfile.ZipFile, sink: RowSink, limits: Limits,
              budget: UnpackBudget) -> None:
    check_archive(archive, "workbook", limits, budget)
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(stream, read_only=True, data_only=True, keep_links=False)
    except _DAMAGED as exc:
        raise Unreadable(safe_reason("XLSX workbook is damaged", exc)) from exc
    try:
        for sheet in workbook.worksheets:
            sink.start_table()
            if hasattr(sheet, "reset_dimensions"):
                sheet.reset_dimensions()  # stored dimensions may lie; read every row there is
            for row in sheet.iter_rows(values_only=True):
                sink.add_row([cell_text(value) for value in row])
    except _DAMAGED as exc:
        raise Unreadable(safe_reason("XLSX sheet is damaged", exc)) from exc
    finally:
        workbook.close()
