"""Zip-bomb checks on an archive's central directory, before any member is inflated.

`zipfile` never returns more bytes than a member's declared size (and fails the CRC if the data
disagrees), so bounding the declared sizes bounds the work. The budget is shared by an archive
and everything nested in it.
"""

from __future__ import annotations

import zipfile

from agent.exports.limits import Limits, Unreadable


class UnpackBudget:
    """Uncompressed bytes still allowed for one scanned file, across all nesting levels."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.remaining = total

    def take(self, size: int, what: str) -> None:
        if size > self.remaining:
            raise Unreadable(
                f"{what} would unpack to {size} bytes; only {self.remaining} of the "
                f"{self.total}-byte limit remain"
            )
        self.remaining -= size


def member_name(info: zipfile.ZipInfo) -> str:
    """Chinese Windows tools write GBK names without the UTF-8 flag; zipfile reads them as cp437."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gb18030")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def is_encrypted(info: zipfile.ZipInfo) -> bool:
    return bool(info.flag_bits & 0x1)


def check_archive(archive: zipfile.ZipFile, what: str, limits: Limits, budget: UnpackBudget) -> None:
    """Refuse the whole archive when it has too many members, a bomb-like ratio or is too big."""
    members = [info for info in archive.infolist() if not info.is_dir()]
    if len(members) > limits.max_zip_members:
        raise Unreadable(f"{what} has {len(members)} members; the limit is {limits.max_zip_members}")
    for info in members:
        if info.file_size > limits.ratio_floor_bytes:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_ratio:
                raise Unreadable(
                    f"{what}: member {member_name(info)!r} has compression ratio {ratio:.0f}:1, "
                    f"above the {limits.max_ratio}:1 limit (zip bomb?)"
                )
    budget.take(sum(info.file_size for info in members if not is_encrypted(info)), what)
