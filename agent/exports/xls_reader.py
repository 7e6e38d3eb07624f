"""Legacy Excel 97-2003 (.xls, BIFF8) workbooks through xlrd 2.x.

xlrd is the maintained reader for .xls (2.x dropped everything else) but it is not streaming: it
needs the whole file in memory. .xls sheets are capped at 65,536 rows by the format, and the file
itself is capped by `Limits.max_xls_bytes`; sheets are loaded and released one at a time.
"""

from __future__ import annotations

from typing import BinaryIO

from agent.exports.cells import cell_text
from agent.exports.limits import Limits, Unreadable, safe_reason
from agent.exports.sink import RowSink


class _Discard:
    """xlrd writes diagnostics to a log file; they may quote cell text, so they go nowhere."""

    def write(self, _text: str) -> int:
        return 0


def read_xls(stream: BinaryIO, size: int, sink: RowSink, limits: Limits) -> None:
    try:
        import xlrd
    except ImportError as exc:  # an install without the optional reader still scans the rest
        raise Unreadable("legacy .xls workbook: the xlrd reader is not installed") from exc
    if size > limits.max_xls_bytes:
        raise Unreadable(f"legacy .xls workbook of {size} bytes is above the {limits.max_xls_bytes}-byte cap")
    data = stream.read(limits.max_xls_bytes + 1)
    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True, logfile=_Discard(), verbosity=0)
    except Exception as exc:  # xlrd raises XLRDError, CompDocError, struct.error, AssertionError ...
        raise Unreadable(safe_reason("OLE2 file is not a readable .xls workbook", exc)) from exc
    try:
        for index in range(book.nsheets):
            try:
                sheet = book.sheet_by_index(index)
                sink.start_table()
                for row in range(sheet.nrows):
                    sink.add_row([cell_text(value) for value in sheet.row_values(row)])
            except Exception as exc:
                raise Unreadable(safe_reason(f".xls sheet {index + 1} is damaged", exc)) from exc
            finally:
                book.unload_sheet(index)
    finally:
        book.release_resources()
