"""Delimited text (CSV, TSV, Excel "Unicode text", plain TXT) as rows of cells, streamed.

Lines are read with a length bound, so a file without line breaks is split into bounded pieces
instead of being read whole. With a `Sampler` (agent/exports/sampling.py) the bytes are read in
chunks cut after a line break, and chunks the sampler skips are never decoded or parsed.
The delimiter is the one that splits every line of the head (",", tab, ";" or "|"); without one,
each line is a single cell.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from typing import BinaryIO

from agent.exports.files import PassingDigest
from agent.exports.limits import Limits, Unreadable, safe_reason
from agent.exports.sampling import SKIPPABLE_ENCODINGS, Sampler
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


def byte_chunks(stream: BinaryIO, size: int, digest: PassingDigest | None = None) -> Iterator[bytes]:
    """`size`-byte pieces of the stream, each ending just after a line feed where one is near."""
    tail = b""
    while block := stream.read(size):
        if digest is not None:
            digest.update(block)
        block = tail + block
        cut = block.rfind(b"\n") + 1
        if cut == 0 and len(block) < size * 4:
            tail = block  # no line break yet: wait for one, up to a bound
            continue
        cut = cut or len(block)
        tail = block[cut:]
        yield block[:cut]
    if tail:
        yield tail


def sampled_lines(stream: BinaryIO, encoding: str, max_chars: int, sampler: Sampler,
                  digest: PassingDigest | None = None) -> Iterator[str]:
    """The lines of the chunks the sampler takes, decoded; skipped chunks stay bytes."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    for chunk in byte_chunks(stream, sampler.policy.chunk_bytes, digest):
        if sampler.take(chunk):
            yield from bounded_lines(io.StringIO(decoder.decode(chunk), newline=""), max_chars)
    yield from bounded_lines(io.StringIO(decoder.decode(b"", final=True), newline=""), max_chars)


def read_delimited(stream: BinaryIO, encoding: str, sample: str, suffix: str, sink: RowSink,
                   limits: Limits, sampler: Sampler | None = None, digest: PassingDigest | None = None) -> None:
    """Rows to the sink. With a sampler (and a codec it can skip in) the file is read once from
    its start in chunks, which also feed `digest`; otherwise `digest` is left alone."""
    if sampler is not None and encoding in SKIPPABLE_ENCODINGS:
        lines = sampled_lines(stream, encoding, limits.max_line_chars, sampler, digest)
        _read_rows(lines, sample, suffix, sink)
        return
    text = open_text(stream, encoding)
    try:
        _read_rows(bounded_lines(text, limits.max_line_chars), sample, suffix, sink)
    finally:
        text.detach()  # the caller owns the binary stream


def _read_rows(lines: Iterator[str], sample: str, suffix: str, sink: RowSink) -> None:
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
