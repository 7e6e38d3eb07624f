"""Delimited text (CSV, TSV, Excel "Unicode text", plain TXT) as rows of cells, streamed.

Lines are read with a length bound, so a file without line breaks is split into bounded pieces
instead of being read whole. The delimiter is the one that splits every sampled line (",", tab,
";" or "|"); without one, each line is a single cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import BinaryIO

from agent.exports.limits import Limits, Unreadable, safe_reason
from agent.exports.sink import RowSink

DELIMITERS = (",", "\t", ";", "|")
SAMPLE_LINES = 20


def bounded_lines(text: io.TextIOBase, max_chars: int) -> Iterator[str]:
    while line := text.readline(max_chars):
        yield line


def sniff_delimiter(sample: str, suffix: str) -> str | None:
    if suffix == ".tsv":
        return "\t"
    lines = [line for line in sample.splitlines()[:SAMPLE_LINES] if line.strip()]
    if len(lines) > 1:
        lines = lines[:-1]  # the sample may cut the last line short
    best, best_count = None, 0
    for delimiter in DELIMITERS:
        fewest = min((line.count(delimiter) for line in lines), default=0)
        if fewest > best_count:
            best, best_count = delimiter, fewest
    return best


def open_text(stream: BinaryIO, encoding: str) -> io.TextIOWrapper:
    # errors="replace": one bad byte deep in a GBK file must not hide the rest of the export.
    return io.TextIOWrapper(stream, encoding=encoding, errors="replace", newline="")


def read_delimited(stream: BinaryIO, encoding: str, sample: str, suffix: str, sink: RowSink,
                   limits: Limits) -> None:
    text = open_text(stream, encoding)
    try:
        lines = bounded_lines(text, limits.max_line_chars)
        delimiter = sniff_delimiter(sample, suffix)
        sink.start_table()
        if delimiter is None:
            for line in lines:
                sink.add_row((line.rstrip("\r\n"),))
            return
        reader = csv.reader(lines, delimiter=delimiter)
        try:
            for row in reader:
                sink.add_row(row)
        except csv.Error as exc:
            raise Unreadable(safe_reason(f"malformed delimited text near line {reader.line_num}", exc)) from exc
    finally:
        text.detach()  # the caller owns the binary stream
