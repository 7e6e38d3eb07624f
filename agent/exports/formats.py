"""Which reader a file needs, decided by its content first and its name second.

Magic bytes pick ZIP (archive or XLSX) and OLE2 (.xls); everything else must look like text to
be read at all. A renamed export ("data.log") is still read as text; known non-data formats
(PDF, images, executables, other archives) are skipped with their name as the reason.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import BinaryIO

from agent.exports.encoding import detect_encoding
from agent.exports.files import PassingDigest
from agent.exports.json_reader import read_json, read_json_lines
from agent.exports.limits import Limits, Unreadable, safe_reason
from agent.exports.sampling import Sampler
from agent.exports.sink import RowSink
from agent.exports.text_reader import read_delimited
from agent.exports.xls_reader import read_xls
from agent.exports.xlsx_reader import read_xlsx
from agent.exports.zip_guard import UnpackBudget

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
OTHER_FORMATS = (
    (b"%PDF", "PDF document"),
    (b"\x89PNG", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF8", "GIF image"),
    (b"MZ", "Windows executable"),
    (b"\x7fELF", "ELF executable"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"Rar!", "RAR archive"),
    (b"\x1f\x8b", "gzip archive"),
)
JSON_SUFFIXES = frozenset({".json"})
JSON_LINES_SUFFIXES = frozenset({".jsonl", ".ndjson"})


@dataclass
class ReadContext:
    """What one scanned file shares across its nesting levels."""

    sink: RowSink
    limits: Limits
    budget: UnpackBudget
    skipped: list[tuple[str, str]] = field(default_factory=list)  # archive members: (inner path, reason)
    sampler: Sampler | None = None  # the file itself only: archive members are counted in full
    digest: PassingDigest | None = None  # fed by a reader that reads the file itself once, in order


ArchiveReader = Callable[[BinaryIO, zipfile.ZipFile, str, int, ReadContext], None]


def read_any(stream: BinaryIO, name: str, size: int, context: ReadContext, depth: int = 0) -> None:
    """Feed the rows of `stream` to the sink; raises Unreadable with the reason otherwise."""
    head = stream.read(context.limits.head_bytes)
    stream.seek(0)
    if head.startswith(ZIP_MAGIC):
        _read_zip_family(stream, name, depth, context)
        return
    if head.startswith(OLE2_MAGIC):
        read_xls(stream, size, context.sink, context.limits)
        return
    for magic, what in OTHER_FORMATS:
        if head.startswith(magic):
            raise Unreadable(f"unsupported format: {what}")
    encoding = detect_encoding(head)
    suffix = PurePath(name).suffix.lower()
    if suffix in JSON_LINES_SUFFIXES:
        read_json_lines(stream, encoding, context.sink, context.limits)
    elif suffix in JSON_SUFFIXES:
        read_json(stream, encoding, size, context.sink, context.limits)
    else:
        sample = head.decode(encoding, errors="replace")
        top = depth == 0
        read_delimited(stream, encoding, sample, suffix, context.sink, context.limits,
                       context.sampler if top else None, context.digest if top else None)


def _read_zip_family(stream: BinaryIO, name: str, depth: int, context: ReadContext) -> None:
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise Unreadable(safe_reason("ZIP container is damaged", exc)) from exc
    with archive:
        names = set(archive.namelist())
        if "xl/workbook.xml" in names or "xl/workbook.bin" in names:
            if "xl/workbook.bin" in names and "xl/workbook.xml" not in names:
                raise Unreadable("unsupported format: binary Excel workbook (.xlsb)")
            read_xlsx(stream, archive, context.sink, context.limits, context.budget)
            return
        if "[Content_Types].xml" in names:
            raise Unreadable("unsupported format: Office document other than a workbook")
        from agent.exports.zip_reader import read_archive  # late: zip_reader recurses into read_any

        read_archive(archive, name, depth, context)
