"""JSON exports: a top-level array streamed element by element, other documents parsed whole
under a size cap, and JSON lines one record a line.

Records become rows: the first record's (flattened) keys are a header row, so "receiver.phone"
names a phone column; each record's values follow in that key order, extra keys after.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any, BinaryIO

from agent.exports.cells import cell_text
from agent.exports.limits import Limits, Unreadable, safe_reason
from agent.exports.sink import RowSink
from agent.exports.text_reader import bounded_lines, open_text

CHUNK_CHARS = 64 * 1024
_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\r\n"
MAX_FLATTEN_DEPTH = 16


def flatten(value: Any, prefix: str = "", depth: int = 0) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict) and depth < MAX_FLATTEN_DEPTH:
        for key, item in value.items():
            yield from flatten(item, f"{prefix}.{key}" if prefix else str(key), depth + 1)
    elif isinstance(value, list) and depth < MAX_FLATTEN_DEPTH:
        for index, item in enumerate(value):
            yield from flatten(item, f"{prefix}.{index}" if prefix else str(index), depth + 1)
    elif isinstance(value, dict | list):
        yield prefix, json.dumps(value, ensure_ascii=False)
    else:
        yield prefix, cell_text(value)


class _Table:
    """Turns a sequence of records into a header row plus value rows in a stable column order."""

    def __init__(self, sink: RowSink) -> None:
        self._sink = sink
        self._columns: dict[str, int] | None = None
        sink.start_table()

    def add(self, record: Any) -> None:
        pairs = list(flatten(record))
        if self._columns is None:
            self._columns = {key: index for index, (key, _) in enumerate(pairs)}
            if isinstance(record, dict):
                self._sink.add_row(list(self._columns))
        cells = [""] * len(self._columns)
        for key, text in pairs:
            index = self._columns.get(key)
            if index is None:
                cells.append(text)
            else:
                cells[index] = text
        self._sink.add_row(cells)


def _is_record_list(value: Any) -> bool:
    return isinstance(value, list) and any(isinstance(item, dict | list) for item in value)


def _is_container(value: Any) -> bool:
    """An envelope such as {"code": 0, "data": {"list": [...]}}: it holds records, it is not one."""
    return isinstance(value, dict) and any(_is_record_list(item) or _is_container(item) for item in value.values())


def walk_document(value: Any, sink: RowSink) -> None:
    """Every list of records anywhere is a table; a dict that holds none is one record.

    Scalars of an envelope (status codes, totals, messages) are not rows and are left out.
    """
    if isinstance(value, list):
        table = _Table(sink)
        for item in value:
            table.add(item)
    elif _is_container(value):
        for item in value.values():
            if _is_record_list(item) or _is_container(item):
                walk_document(item, sink)
    else:
        _Table(sink).add(value)


def _stream_array(text: io.TextIOBase, buffer: str, sink: RowSink, limits: Limits) -> None:
    """Decode one element at a time; read more (doubling) only when an element is cut short."""
    table = _Table(sink)
    pos = buffer.index("[") + 1
    eof = False
    while True:
        while pos < len(buffer) and buffer[pos] in _WHITESPACE + ",":
            pos += 1
        if pos < len(buffer) and buffer[pos] == "]":
            return
        try:
            if pos >= len(buffer):
                raise ValueError("need more")
            record, end = _DECODER.raw_decode(buffer, pos)
            if end == len(buffer) and not eof:
                raise ValueError("element may continue")  # e.g. a number cut at the chunk edge
        except ValueError as exc:
            if eof:
                raise Unreadable(safe_reason("malformed JSON array", exc)) from exc
            if len(buffer) - pos > limits.max_json_record_chars:
                raise Unreadable(f"JSON array element longer than {limits.max_json_record_chars} characters") from exc
            buffer = buffer[pos:]
            pos = 0
            more = text.read(max(CHUNK_CHARS, len(buffer)))
            eof = not more
            buffer += more
            continue
        table.add(record)
        pos = end


def read_json(stream: BinaryIO, encoding: str, size: int, sink: RowSink, limits: Limits) -> None:
    text = open_text(stream, encoding)
    try:
        buffer = text.read(CHUNK_CHARS)
        first = buffer.lstrip(_WHITESPACE + "\ufeff")[:1]
        if first == "[":
            _stream_array(text, buffer, sink, limits)
            return
        if size > limits.max_json_document_bytes:
            raise Unreadable(
                f"JSON document of {size} bytes is not a top-level array; whole-document parsing is "
                f"capped at {limits.max_json_document_bytes} bytes"
            )
        try:
            document = json.loads(buffer + text.read())
        except (ValueError, RecursionError) as exc:
            raise Unreadable(safe_reason("malformed JSON", exc)) from exc
        walk_document(document, sink)
    except RecursionError as exc:
        raise Unreadable("JSON nested too deeply") from exc
    finally:
        text.detach()


def read_json_lines(stream: BinaryIO, encoding: str, sink: RowSink, limits: Limits) -> None:
    text = open_text(stream, encoding)
    try:
        table, good, bad = _Table(sink), 0, 0
        for line in bounded_lines(text, limits.max_line_chars):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                bad += 1
                continue
            good += 1
            table.add(record)
        if bad and not good:
            raise Unreadable(f"not JSON lines: none of {bad} lines parsed as JSON")
    finally:
        text.detach()
