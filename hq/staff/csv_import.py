"""`staff import FILE.csv`: read a staff list, every problem located as FILE:LINE: column: what.

Columns (header row, any order): ``id``, ``outlet``, ``name`` and one of ``password`` (hashed on
import; delete the file afterwards) or ``password_hash`` (an argon2id PHC string made elsewhere).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hq.staff.passwords import PasswordError, check_new_password, is_password_hash
from hq.staff.store import StaffError, check_fields

MAX_FILE_BYTES = 32 * 1024 * 1024
REQUIRED = ("id", "outlet", "name")
SECRETS = ("password", "password_hash")


class StaffFileError(ValueError):
    """Problems in the file; the message lists up to 20 of them, each with its line."""


@dataclass(frozen=True)
class StaffRow:
    line: int
    staff_id: str
    outlet_id: str
    name: str
    password: str | None
    password_hash: str | None


def _header(fieldnames: Sequence[str] | None, path: Path) -> list[str]:
    names = [name.strip().lower() for name in fieldnames or []]
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise StaffFileError(f"{path}:1: header: missing column(s) {', '.join(missing)}; "
                           f"expected id, outlet, name and password or password_hash")
    secrets = [name for name in SECRETS if name in names]
    if len(secrets) != 1:
        raise StaffFileError(f"{path}:1: header: expected exactly one of password, password_hash")
    unknown = [name for name in names if name not in (*REQUIRED, *SECRETS)]
    if unknown:
        raise StaffFileError(f"{path}:1: header: unknown column(s) {', '.join(unknown)}")
    return names


def _row(values: dict[str, str], line: int) -> StaffRow:
    row = StaffRow(line=line, staff_id=values.get("id", "").strip(), outlet_id=values.get("outlet", "").strip(),
                   name=values.get("name", "").strip(), password=values.get("password"),
                   password_hash=(values.get("password_hash") or "").strip() or None)
    check_fields(staff_id=row.staff_id, outlet_id=row.outlet_id, name=row.name)
    if "password_hash" in values:
        if row.password_hash is None or not is_password_hash(row.password_hash):
            raise StaffError("password_hash: expected an argon2id PHC string ($argon2id$v=19$...)")
    else:
        try:
            check_new_password(row.password or "")
        except PasswordError as exc:
            raise StaffError(str(exc)) from None
    return row


def read_staff_csv(path: Path) -> list[StaffRow]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise StaffFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise StaffFileError(f"{path}: {len(raw)} bytes; a staff file is at most {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise StaffFileError(f"{path}:{line}: not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    names = _header(reader.fieldnames, path)
    reader.fieldnames = names
    rows: list[StaffRow] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    try:
        for values in reader:
            line = reader.line_num
            if None in values or any(v is None for v in values.values()):
                problems.append(f"{path}:{line}: expected {len(names)} columns (quote a field that holds a comma, "
                                "as argon2 hashes do)")
                continue
            try:
                row = _row(values, line)
            except StaffError as exc:
                problems.append(f"{path}:{line}: {exc}")
                continue
            if row.staff_id in seen:
                problems.append(f"{path}:{line}: id: {row.staff_id} already on line {seen[row.staff_id]}")
                continue
            seen[row.staff_id] = line
            rows.append(row)
    except csv.Error as exc:
        problems.append(f"{path}:{reader.line_num}: not valid CSV: {exc}")
    if problems:
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        raise StaffFileError("\n".join(problems[:20]) + more)
    if not rows:
        raise StaffFileError(f"{path}: no staff rows after the header")
    return rows
