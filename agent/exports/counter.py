"""Streaming PII counter: rows in, counts out, values never kept.

Rows are buffered into blocks (bounded by rows and characters); each row becomes one string with
its cells separated, and matchers run over the block with `map(pattern.findall, lines)`, so the
loop and the matching stay in C and Python only touches the values found. A row that holds a
phone (mobile or landline) and an address or a personal name counts as a PII row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agent.exports import patterns
from agent.exports.distinct import DEFAULT_CAPACITY, DistinctCounter
from agent.exports.headers import header_category

KINDS = ("mobile", "landline", "id_card", "waybill", "address", "name")
PERSONAL_HEADERS = frozenset({"phone", "address", "id_card", "name"})
HEADER_SEARCH_ROWS = 5  # a title line or two may precede the header row of an export
BLOCK_ROWS = 4096
BLOCK_CHARS = 4 << 20
MAX_NAME_CHARS = 30


@dataclass(frozen=True)
class PiiResult:
    counts: dict[str, int]
    rows: int
    pii_rows: int
    headers: tuple[str, ...]
    estimated: tuple[str, ...] = ()  # kinds whose distinct count is a sampled estimate
    sampled: bool = False  # rows after the verdict were sampled: rows, pii_rows scaled; counts a lower bound

    @property
    def personal_header(self) -> bool:
        return bool(PERSONAL_HEADERS.intersection(self.headers))


def _lines(rows: list[Sequence[str]]) -> list[str]:
    """Each row as one string with a separator before and after every cell."""
    sep = patterns.CELL_SEP
    return [sep + sep.join(cells) + sep for cells in rows]


def _per_line(pattern: re.Pattern[str], lines: list[str], block: str) -> list[list[str]]:
    """`pattern.findall` of each line, or all empty when the block as a whole has no match."""
    if pattern.search(block) is None:
        return [[]] * len(lines)
    return list(map(pattern.findall, lines))


def _holds_values(cells: Sequence[str]) -> bool:
    line = _lines([cells])[0]
    return any(pattern.search(line) for pattern in (patterns.MOBILE, patterns.LANDLINE,
                                                    patterns.address_matcher(line)))


def _digits(value: str) -> str:
    return value.replace(" ", "").replace("-", "").replace("(", "").replace(")", "")


@dataclass(frozen=True)
class _Rows:
    """Rows and PII rows counted when sampling began (what the samples are scaled on top of)."""

    rows: int
    pii_rows: int


class PiiCounter:
    """Feed rows with `add_row`, mark tables with `start_table`, read `result()` at the end."""

    def __init__(self, waybills: re.Pattern[str] | None = None, *, capacity: int = DEFAULT_CAPACITY) -> None:
        self._waybills = waybills if waybills is not None else patterns.compile_waybills(None)
        self._distinct = {kind: DistinctCounter(capacity) for kind in KINDS}
        self._pending: list[Sequence[str]] = []
        self._pending_chars = 0
        self._rows = 0
        self._pii_rows = 0
        self._headers: set[str] = set()
        self._table_rows_seen = 0
        self._header_found = False
        self._name_columns: tuple[int, ...] = ()
        self._before_sampling: _Rows | None = None
        self._skipped_lines = 0

    def begin_sampling(self) -> None:
        """From here on the reader feeds a sample of the rows; see agent/exports/sampling.py."""
        self._flush()
        self._before_sampling = _Rows(self._rows, self._pii_rows)

    def add_skipped_lines(self, lines: int) -> None:
        self._skipped_lines += lines

    def start_table(self) -> None:
        """A new sheet, file or archive member: its header row is searched for afresh."""
        self._flush()
        self._table_rows_seen = 0
        self._header_found = False
        self._name_columns = ()

    def add_rows(self, rows: Iterable[Sequence[str]]) -> None:
        for row in rows:
            self.add_row(row)

    def add_row(self, cells: Sequence[str]) -> None:
        if not any(cells):
            return
        if not self._header_found and self._table_rows_seen < HEADER_SEARCH_ROWS:
            self._table_rows_seen += 1
            if self._take_header(cells):
                return
        self._pending.append(cells)
        self._pending_chars += sum(map(len, cells))
        if len(self._pending) >= BLOCK_ROWS or self._pending_chars >= BLOCK_CHARS:
            self._flush()

    def result(self) -> PiiResult:
        self._flush()
        counts = {kind: counter.count() for kind, counter in self._distinct.items()}
        estimated = tuple(kind for kind, counter in self._distinct.items() if counter.estimated)
        headers = tuple(sorted(self._headers))
        before = self._before_sampling
        if before is None:
            return PiiResult(counts, self._rows, self._pii_rows, headers, estimated)
        # Distinct counts are not scaled: they stay the distinct values of the rows counted, a lower
        # bound. Scaling the new values a sample brings overstates a file that repeats its customers
        # (the values of the skipped rows were never seen, so every later sample looks new): three
        # times over on a generated export with repeated addresses.
        rows, pii_rows = self._scaled_rows(before)
        return PiiResult(counts, rows, pii_rows, headers, estimated, sampled=True)

    def _scaled_rows(self, before: _Rows) -> tuple[int, int]:
        """Rows and PII rows: those before sampling, plus the samples' times the share of lines they were."""
        sampled_rows = self._rows - before.rows
        scale = (sampled_rows + self._skipped_lines) / sampled_rows if sampled_rows else 1.0
        pii_rows = before.pii_rows + round((self._pii_rows - before.pii_rows) * scale)
        return before.rows + sampled_rows + self._skipped_lines, pii_rows

    def _take_header(self, cells: Sequence[str]) -> bool:
        found = [(index, header_category(cell)) for index, cell in enumerate(cells)]
        categories = {category for _, category in found if category}
        if not categories or _holds_values(cells):
            return False  # "电话:138..." in a data row names a field but is not a header
        self._header_found = True
        self._headers |= categories
        self._name_columns = tuple(index for index, category in found if category == "name")
        return True

    def _flush(self) -> None:
        if not self._pending:
            return
        rows, self._pending, self._pending_chars = self._pending, [], 0
        lines = _lines(rows)
        block = patterns.ROW_SEP.join(lines)
        phone_rows = self._phones(lines, block)
        contact_rows = self._addresses(lines, block) | self._names(lines, rows, block)
        self._runs(block)
        self._rows += len(rows)
        self._pii_rows += len(phone_rows & contact_rows)

    def _phones(self, lines: list[str], block: str) -> set[int]:
        # findall per line, driven by map: the loop and the matching stay in C, and which row a
        # value came from is just its index. One search over the whole block first lets benign
        # blocks skip the per-line calls.
        mobiles = _per_line(patterns.MOBILE, lines, block)
        landlines = _per_line(patterns.LANDLINE, lines, block)
        self._distinct["mobile"].add_many(_digits(value) for found in mobiles for value in found)
        self._distinct["landline"].add_many(_digits(value) for found in landlines for value in found)
        return {index for index, found in enumerate(mobiles) if found} | {
            index for index, found in enumerate(landlines) if found}

    def _addresses(self, lines: list[str], block: str) -> set[int]:
        found_rows: set[int] = set()
        values: list[str] = []
        if patterns.ADDRESS_LINEAR.search(block) is None:  # one linear pass skips benign blocks
            return found_rows
        cell_start = patterns.CELL_SEP
        heavy = patterns.HEAVY_LINE.search(block) is not None  # rare: only then choose per line
        hits = (patterns.address_matcher(line).search(line) for line in lines) if heavy else map(
            patterns.ADDRESS.search, lines)
        for index, hit in enumerate(hits):
            if hit is None:
                continue
            found_rows.add(index)
            line = lines[index]
            matcher = patterns.address_matcher(line) if heavy else patterns.ADDRESS
            for match in matcher.finditer(line, hit.start()):
                start = match.start()
                # Widen to the start of the cell, where the province or city name stands.
                values.append(line[line.rfind(cell_start, 0, start) + 1:match.end()])
        self._distinct["address"].add_many(values)
        return found_rows

    def _names(self, lines: list[str], rows: list[Sequence[str]], block: str) -> set[int]:
        names = _per_line(patterns.NAME_CELL, lines, block)
        found_rows = {index for index, found in enumerate(names) if found}
        values = [value for found in names for value in found]
        for column in self._name_columns:
            for index, cells in enumerate(rows):
                if column < len(cells):
                    value = cells[column].strip()
                    if value and len(value) <= MAX_NAME_CHARS and not value[0].isdigit():
                        values.append(value)
                        found_rows.add(index)
        self._distinct["name"].add_many(values)
        return found_rows

    def _runs(self, text: str) -> None:
        """ID and waybill numbers: whole letter/digit runs, cut out in C, checked in full."""
        ids, waybills = [], []
        fullmatch_waybill, fullmatch_id = self._waybills.fullmatch, patterns.ID_CARD.fullmatch
        for run in patterns.ALNUM_RUN.findall(text):
            if run.isalpha():
                continue  # a word: neither an ID nor a waybill number, which always hold digits
            if len(run) == 18 and fullmatch_id(run):
                ids.append(run.upper())
            elif fullmatch_waybill(run):
                waybills.append(run)
        self._distinct["id_card"].add_many(value for value in ids if patterns.valid_id_card(value))
        self._distinct["waybill"].add_many(waybills)
