"""Reading an MSI's tables with msiinfo (msitools), for the MSI tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

Row = dict[str, str]


def table(msi: Path, name: str) -> list[Row]:
    """Rows of one table from `msiinfo export` (IDT text: names, types, key line, then rows)."""
    out = subprocess.run(["msiinfo", "export", str(msi), name], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise AssertionError(f"msiinfo export {msi.name} {name} failed: {out.stderr.strip()}")
    lines = out.stdout.replace("\r\n", "\n").split("\n")
    columns = lines[0].split("\t")
    return [dict(zip(columns, line.split("\t"), strict=False)) for line in lines[3:] if line]


def by_key(msi: Path, name: str, key: str) -> dict[str, Row]:
    return {row[key]: row for row in table(msi, name)}


def properties(msi: Path) -> dict[str, str]:
    return {row["Property"]: row["Value"] for row in table(msi, "Property")}


def sequence(msi: Path) -> dict[str, int]:
    return {row["Action"]: int(row["Sequence"]) for row in table(msi, "InstallExecuteSequence")}
