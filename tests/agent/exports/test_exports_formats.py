"""Every supported format and encoding yields the same counts for the same generated export."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import xlwt
from exports_fakedata import HEADER, Generator, expected_counts, records, write_csv, xlsx_bytes

from agent.exports.counter import PiiResult
from agent.exports.scan import inspect_file

ROWS = 300


@pytest.fixture(scope="module")
def rows() -> list[list[str]]:
    return list(Generator(seed=5).waybill_rows(ROWS))


def read_result(path: Path) -> tuple[PiiResult, list[tuple[str, str]]]:
    """Scan and return the counter's result via the finding (all generated exports are critical/high)."""
    outcome = inspect_file(path)
    assert outcome.finding is not None, outcome.skipped
    fields = outcome.finding.fields
    result = PiiResult(fields["pii.counts"], fields["rows"], fields["pii.rows"], tuple(fields["pii.headers"]))
    return result, outcome.skipped


def write_xlsx(tmp: Path, rows: list[list[str]]) -> Path:
    path = tmp / "export.xlsx"
    path.write_bytes(xlsx_bytes(rows, sheets=3))
    return path


def write_xls(tmp: Path, rows: list[list[str]]) -> Path:
    book = xlwt.Workbook(encoding="utf-8")
    for index, part in enumerate((rows[: len(rows) // 2], rows[len(rows) // 2:])):
        sheet = book.add_sheet(f"sheet{index}")
        for column, label in enumerate(HEADER):
            sheet.write(0, column, label)
        for number, row in enumerate(part, start=1):
            for column, value in enumerate(row):
                sheet.write(number, column, float(value) if column in (2, 5) else value)
    path = tmp / "export.xls"
    book.save(str(path))
    return path


def write_json_array(tmp: Path, rows: list[list[str]]) -> Path:
    path = tmp / "export.json"
    path.write_text(json.dumps(records(rows), ensure_ascii=False, indent=1), "utf-8")
    return path


def write_json_document(tmp: Path, rows: list[list[str]]) -> Path:
    path = tmp / "api.json"
    path.write_text(json.dumps({"code": 0, "data": {"total": len(rows), "list": records(rows)}}, ensure_ascii=False),
                    "utf-8")
    return path


def write_json_lines(tmp: Path, rows: list[list[str]]) -> Path:
    path = tmp / "export.jsonl"
    path.write_text("\n".join(json.dumps(record, ensure_ascii=False) for record in records(rows)) + "\n", "utf-8")
    return path


def write_zip(tmp: Path, rows: list[list[str]]) -> Path:
    inner = tmp / "inner.csv"
    write_csv(inner, rows[:100], encoding="gb18030")
    path = tmp / "bundle.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(inner, "第一批.csv")
        archive.writestr("第二批.xlsx", xlsx_bytes(rows[100:200]))
        archive.writestr("第三批.json", json.dumps(records(rows[200:]), ensure_ascii=False))
        archive.writestr("readme.txt", "no customer data here")
    inner.unlink()
    return path


def write_nested_zip(tmp: Path, rows: list[list[str]]) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as inner:
        text = io.StringIO()
        write_csv_text(text, rows)
        inner.writestr("export.csv", text.getvalue())
    path = tmp / "outer.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as outer:
        outer.writestr("inner.zip", buffer.getvalue())
    return path


def write_csv_text(handle: io.StringIO, rows: list[list[str]]) -> None:
    handle.write(",".join(HEADER) + "\n")
    handle.writelines(",".join(row) + "\n" for row in rows)


WRITERS: dict[str, Callable[[Path, list[list[str]]], Path]] = {
    "csv-utf8": lambda tmp, rows: write_csv(tmp / "e.csv", rows),
    "csv-utf8-bom": lambda tmp, rows: write_csv(tmp / "e.csv", rows, encoding="utf-8-sig"),
    "csv-gbk": lambda tmp, rows: write_csv(tmp / "e.csv", rows, encoding="gbk"),
    "csv-gb18030": lambda tmp, rows: write_csv(tmp / "e.csv", rows, encoding="gb18030"),
    "tsv-utf8": lambda tmp, rows: write_csv(tmp / "e.tsv", rows, delimiter="\t"),
    "txt-utf16-excel-unicode-text": lambda tmp, rows: write_csv(tmp / "e.txt", rows, encoding="utf-16",
                                                                delimiter="\t"),
    "txt-semicolon": lambda tmp, rows: write_csv(tmp / "e.txt", rows, delimiter=";"),
    "renamed-csv": lambda tmp, rows: write_csv(tmp / "notes.log", rows, encoding="gbk"),
    "xlsx-3-sheets": write_xlsx,
    "xls-2-sheets": write_xls,
    "json-array": write_json_array,
    "json-document": write_json_document,
    "json-lines": write_json_lines,
    "zip-mixed": write_zip,
    "zip-in-zip": write_nested_zip,
}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_every_format_yields_the_generated_counts(kind: str, rows: list[list[str]], tmp_path: Path) -> None:
    path = WRITERS[kind](tmp_path, rows)
    result, skipped = read_result(path)
    assert result.counts == expected_counts(rows)
    assert result.rows == ROWS
    assert result.pii_rows == ROWS
    assert {"phone", "address", "name", "waybill"} <= set(result.headers)
    assert skipped == []


def test_plain_text_without_delimiters_is_read_line_by_line(rows: list[list[str]], tmp_path: Path) -> None:
    path = tmp_path / "聊天记录.txt"
    path.write_text("\n".join(f"客户 {row[1]} 电话 {row[2]} 地址 {row[3]}" for row in rows), "utf-8")
    outcome = inspect_file(path)
    assert outcome.finding is not None
    assert outcome.finding.fields["pii.counts"]["mobile"] == len({row[2] for row in rows})
    assert outcome.finding.fields["pii.rows"] == ROWS


def test_utf16_big_endian_and_bomless_little_endian(rows: list[list[str]], tmp_path: Path) -> None:
    text = "\n".join("\t".join(row) for row in rows[:60])
    (tmp_path / "be.txt").write_bytes(b"\xfe\xff" + text.encode("utf-16-be"))
    (tmp_path / "ascii16.txt").write_bytes("\n".join(f"{row[2]}\t{row[5]}" for row in rows[:60]).encode("utf-16-le"))
    assert inspect_file(tmp_path / "be.txt").finding is not None
    finding = inspect_file(tmp_path / "ascii16.txt").finding
    assert finding is not None and finding.fields["pii.counts"]["mobile"] == 120
