"""Opening a file to scan without being tricked: regular files only, names that print.

FIFOs and devices would block or never end, so the file is opened non-blocking and checked with
fstat on the open handle (no check-then-open race). Directories are walked without following
symlinks, so a symlink loop cannot trap the walk; unreadable folders are reported, not fatal.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from agent.exports.limits import Unreadable

HASH_CHUNK = 1 << 20


def display_path(path: Path | str) -> str:
    """A path as text; undecodable bytes in a name (often GBK on a USB stick) decoded as GB18030."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(text)
        try:
            return raw.decode("gb18030")
        except UnicodeDecodeError:
            return raw.decode("utf-8", "backslashreplace")
    return text


def open_regular(path: Path) -> BinaryIO:
    """Open for reading; raises Unreadable for anything but a regular file, OSError on failure."""
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise Unreadable(f"not a regular file (mode {stat.filemode(mode)})")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=HASH_CHUNK)
    except BaseException:
        os.close(fd)
        raise


class PassingDigest:
    """SHA-256 of the bytes a reader passes through in file order from offset 0, so a reader that
    reads the file once saves the second pass `sha256_of` would make (a third of a sampled scan)."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._length = 0

    def update(self, data: bytes) -> None:
        self._hash.update(data)
        self._length += len(data)

    def hexdigest_of(self, size: int) -> str | None:
        """The digest when exactly `size` bytes went through, else None (read partly, or grew)."""
        return self._hash.hexdigest() if self._length == size else None


def sha256_of(stream: BinaryIO) -> str:
    stream.seek(0)
    digest = hashlib.sha256()
    while chunk := stream.read(HASH_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def walk_files(root: Path, skipped: list[tuple[str, str]]) -> Iterator[Path]:
    """Files under `root` in a stable order; folders that cannot be listed go to `skipped`."""

    def on_error(exc: OSError) -> None:
        skipped.append((display_path(exc.filename or root), f"folder not readable: {exc.strerror or exc}"))

    for folder, dirs, names in os.walk(root, onerror=on_error, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            yield Path(folder, name)
