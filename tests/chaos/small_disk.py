"""A size-limited folder for the agent's state: a tmpfs mount that a test can fill to the last byte
and free again. Needs root (CI and the dev machines run as root); unmounts on every exit path.

    with SmallDisk(tmp_path / "state", size_mb=16) as disk:
        ...                 # the agent keeps its spool inside
        disk.fill()         # ENOSPC from now on
        disk.free()         # space again
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from types import TracebackType

FILLER = ".chaos-filler"


class SmallDiskUnavailable(RuntimeError):
    pass


class SmallDisk:
    def __init__(self, where: Path, *, size_mb: int) -> None:
        self.where = where
        self.size_mb = size_mb
        self.mounted = False

    def mount(self) -> SmallDisk:
        if os.geteuid() != 0:
            raise SmallDiskUnavailable("mounting a size-limited tmpfs needs root (make test runs as root in CI)")
        self.where.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m,mode=0711", "tg-chaos",
                               str(self.where)], capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise SmallDiskUnavailable(f"mount tmpfs on {self.where} failed: {done.stderr.strip()}")
        self.mounted = True
        return self

    def fill(self) -> int:
        """Write a filler file until the disk refuses; returns the bytes it took."""
        written = 0
        block = b"\0" * 65536
        with open(self.where / FILLER, "ab", buffering=0) as filler:
            for size in (65536, 4096, 512, 1):
                while True:
                    try:
                        written += filler.write(block[:size])
                    except OSError:
                        break
        return written

    def free(self) -> None:
        (self.where / FILLER).unlink(missing_ok=True)

    def available(self) -> int:
        return shutil.disk_usage(self.where).free

    def unmount(self) -> None:
        if not self.mounted:
            return
        done = subprocess.run(["umount", str(self.where)], capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            # Still busy (a process we could not stop): detach it now, the kernel frees it when unused.
            subprocess.run(["umount", "-l", str(self.where)], capture_output=True, text=True, timeout=30)
        self.mounted = False

    def __enter__(self) -> SmallDisk:
        return self.mount()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.unmount()
