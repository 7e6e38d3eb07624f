"""Once a file is certainly critical, count a sample of the rest instead of every row.

A 200 MB export of customer records crosses the critical threshold in its first few thousand
rows. From then on nothing in the file can raise the verdict, and counting every further row only
refines numbers (rows, PII rows, distinct mobiles) that an analyst reads as "how much was taken".
So after the verdict is settled *and* at least `exact_bytes` have been counted, the delimited-text
reader counts one chunk in `stride` and only counts the line breaks of the others. The counter
scales the rows and PII rows of the sampled chunks to the skipped ones; distinct counts stay those
of the rows counted, a lower bound (`PiiCounter.result`). The finding says `scan.sampled`, and
`terminal-guard scan --files ... --exact` counts every row.

Nothing is skipped before the verdict is critical, so PII placed after a long harmless prefix is
still counted in full. Only text whose line break is the byte 0x0A in every position (UTF-8,
GB18030 and its subsets) is sampled: chunks are cut after a line break, so a skipped chunk is
never decoded and the decoder never sees half a character. UTF-16/32 files, spreadsheets, JSON
and archive members are always counted in full.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

MiB = 1 << 20
# Codecs in which byte 0x0A is always a line feed: never part of a multi-byte character.
SKIPPABLE_ENCODINGS = frozenset({"utf-8", "utf-8-sig", "gb18030", "gbk", "gb2312", "ascii"})


@dataclass(frozen=True)
class SamplingPolicy:
    exact_bytes: int = 2 * MiB  # always counted row by row, whatever the verdict
    chunk_bytes: int = 256 * 1024
    stride: int = 128  # after that, one chunk in `stride` is counted (~10,000 rows of a 200 MB export)


EXACT = SamplingPolicy(exact_bytes=1 << 62)  # counts every row: `scan --exact`
DEFAULT_SAMPLING = SamplingPolicy()


class SampledCounts(Protocol):
    """What the sampler tells the counter, so it can scale what it counted: `PiiCounter`."""

    def begin_sampling(self) -> None: ...

    def add_skipped_lines(self, lines: int) -> None: ...


class Sampler:
    """Decides chunk by chunk whether the reader counts it (`take`) or only its line breaks."""

    def __init__(self, policy: SamplingPolicy, settled: Callable[[], bool], counts: SampledCounts) -> None:
        if policy.stride < 1 or policy.chunk_bytes < 1:
            raise ValueError(f"sampling: stride and chunk_bytes must be positive, got {policy}")
        self.policy = policy
        self._settled = settled
        self._counts = counts
        self._counted_bytes = 0
        self._sampling = False
        self._since_sample = 0

    def take(self, chunk: bytes) -> bool:
        """True: the reader decodes and counts `chunk`. False: it was skipped (its lines are noted)."""
        if not self._sampling:
            self._counted_bytes += len(chunk)
            if self._counted_bytes > self.policy.exact_bytes and self._settled():
                self._sampling = True
                self._counts.begin_sampling()
                self._since_sample = 0
                return True  # the first chunk after the switch is a sample, so there is always one
            return True
        self._since_sample += 1
        if self._since_sample >= self.policy.stride:
            self._since_sample = 0
            return True
        self._counts.add_skipped_lines(chunk.count(b"\n"))
        return False
