"""What a scan refuses to do: size, depth and ratio bounds, and the refusal itself.

Every refusal is an `Unreadable` with a reason a person can act on. Reasons never quote file
content: `safe_reason` masks digit runs that could be a phone or an ID number in messages that
come from third-party parsers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MiB = 1 << 20


@dataclass(frozen=True)
class Limits:
    head_bytes: int = 64 * 1024             # sniffed for format and encoding
    max_line_chars: int = 1 * MiB           # a longer line is split, never read whole
    max_zip_depth: int = 2                  # an archive inside an archive, no deeper
    max_zip_members: int = 1000
    max_unpacked_bytes: int = 1024 * MiB    # declared uncompressed bytes of one file, all levels
    max_ratio: int = 200                    # declared uncompressed / compressed size per member
    ratio_floor_bytes: int = 1 * MiB        # small members may compress better than that
    max_json_document_bytes: int = 64 * MiB  # non-array JSON is parsed whole, so it is capped
    max_json_record_chars: int = 4 * MiB    # one element of a streamed JSON array
    max_xls_bytes: int = 64 * MiB           # xlrd reads a whole .xls into memory


DEFAULT_LIMITS = Limits()


class Unreadable(Exception):
    """A file (or archive member) that is skipped, with the reason why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_LONG_DIGITS = re.compile(r"\d{7,}")


def safe_reason(prefix: str, exc: BaseException) -> str:
    """`prefix: ExcType: message`, bounded, with long digit runs masked."""
    message = _LONG_DIGITS.sub("#", str(exc))[:160]
    detail = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return f"{prefix}: {detail}"
