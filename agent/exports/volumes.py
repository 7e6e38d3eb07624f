"""Removable drives (USB sticks, SD cards) and the default folders exports land in.

Behind one small interface: Linux reads psutil's mounted partitions and sysfs
(`/sys/class/block/<dev>` -> the disk's `removable` flag, or a USB bus in its device path, since
USB hard disks report removable=0); Windows asks GetDriveTypeW for DRIVE_REMOVABLE (a USB hard
disk reports DRIVE_FIXED there and is not covered); a fake serves tests.

The export sensor asks every few seconds. On Linux the answer is kept until the mount table
changes, which the kernel signals on /proc/self/mountinfo (poll() reports POLLPRI once per
change), so an unchanged table costs one poll() instead of a partition listing and sysfs reads.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import re
import select
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import psutil

log = logging.getLogger(__name__)

DRIVE_REMOVABLE = 2


class Volumes(Protocol):
    def removable_mounts(self) -> list[Path]: ...


def on_removable(path: Path | str, mounts: Iterable[Path]) -> bool:
    """Whether `path` lies on one of the removable `mounts`."""
    target = os.path.normcase(os.path.abspath(path))
    for mount in mounts:
        root = os.path.normcase(os.path.abspath(mount))
        if target == root or target.startswith(root.rstrip("\\/") + os.sep):
            return True
    return False


class FakeVolumes:
    def __init__(self, mounts: Sequence[Path] = ()) -> None:
        self.mounts = list(mounts)

    def removable_mounts(self) -> list[Path]:
        return list(self.mounts)


class MountWatch:
    """Tells whether the mount table changed since the last call (Linux mountinfo POLLPRI).

    The first call answers True. Where the file cannot be watched, every call answers True.
    """

    def __init__(self, path: str = "/proc/self/mountinfo") -> None:
        self._poll: select.poll | None = None
        self._fd: int | None = None
        self._first = True
        try:
            self._fd = os.open(path, os.O_RDONLY)
            self._poll = select.poll()
            self._poll.register(self._fd, select.POLLPRI | select.POLLERR)
        except (OSError, AttributeError) as exc:  # AttributeError: no select.poll (Windows)
            log.info("mount table changes cannot be watched (%s); listing partitions each time", exc)
            self.close()

    @property
    def watching(self) -> bool:
        return self._poll is not None

    def changed(self) -> bool:
        if self._first or self._poll is None:
            self._first = False
            return True
        return bool(self._poll.poll(0))  # the kernel clears the change mark on this very poll

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd, self._poll = self._fd, None, None
            with contextlib.suppress(OSError):
                os.close(fd)

    def __del__(self) -> None:
        self.close()


class LinuxVolumes:
    """Removable mounts; with ``mounts_changed`` the last answer is kept while it says False."""

    def __init__(self, partitions: Callable[..., list[Any]] = psutil.disk_partitions,
                 sys_root: Path = Path("/sys"), mounts_changed: Callable[[], bool] | None = None) -> None:
        self._partitions = partitions
        self._sys = sys_root
        self._mounts_changed = mounts_changed
        self._last: list[Path] | None = None
        self.listings = 0

    def removable_mounts(self) -> list[Path]:
        # Asked first, so a mount during the listing below shows as a change next time.
        changed = self._mounts_changed() if self._mounts_changed is not None else True
        if self._last is not None and not changed:
            return list(self._last)
        self._last = None
        self.listings += 1
        try:
            parts = self._partitions(all=False)
        except OSError as exc:
            log.warning("cannot list partitions: %s", exc)
            return []
        mounts = [Path(part.mountpoint) for part in parts
                  if part.device.startswith("/dev/") and self._removable(Path(part.device).name)]
        self._last = mounts
        return list(mounts)

    def _removable(self, device: str) -> bool:
        node = self._sys / "class" / "block" / device
        try:
            real = node.resolve(strict=True)
            disk = real.parent if (real / "partition").exists() else real
            flag = (disk / "removable").read_text().strip() == "1"
        except OSError:
            return False
        return flag or "/usb" in real.as_posix()


class WindowsVolumes:
    """Drive letters whose GetDriveTypeW is DRIVE_REMOVABLE. `kernel32` is injectable for tests."""

    def __init__(self, kernel32: Any | None = None) -> None:
        self._kernel32 = kernel32

    def _api(self) -> Any:
        if self._kernel32 is None:
            loader = getattr(ctypes, "WinDLL", None)
            if loader is None:
                raise OSError("kernel32 is only available on Windows")
            kernel32 = loader("kernel32", use_last_error=True)
            kernel32.GetLogicalDrives.restype = ctypes.c_uint32
            kernel32.GetLogicalDrives.argtypes = []
            kernel32.GetDriveTypeW.restype = ctypes.c_uint
            kernel32.GetDriveTypeW.argtypes = [ctypes.c_wchar_p]
            self._kernel32 = kernel32
        return self._kernel32

    def removable_mounts(self) -> list[Path]:
        api = self._api()
        mask = int(api.GetLogicalDrives())
        roots = [f"{chr(ord('A') + bit)}:\\" for bit in range(26) if mask >> bit & 1]
        return [Path(root) for root in roots if api.GetDriveTypeW(root) == DRIVE_REMOVABLE]


def removable_checker(volumes: Volumes) -> Callable[[Path], bool]:
    """For `scan_paths(removable=...)`: asks for the drive list once, then checks each path."""
    mounts = volumes.removable_mounts()
    return lambda path: on_removable(path, mounts)


def default_volumes() -> Volumes:
    if sys.platform == "win32":
        return WindowsVolumes()
    watch = MountWatch()
    return LinuxVolumes(mounts_changed=watch.changed if watch.watching else None)


# --- default watch folders -------------------------------------------------------------------

_STANDARD = ("Downloads", "Desktop", "Documents", "下载", "桌面", "文档",
             "OneDrive/Desktop", "OneDrive/Documents", "OneDrive/桌面", "OneDrive/文档")
_CHROMIUM_HOMES = (
    "AppData/Local/Google/Chrome/User Data", "AppData/Local/Microsoft/Edge/User Data",
    "AppData/Local/Chromium/User Data", "AppData/Local/BraveSoftware/Brave-Browser/User Data",
    "AppData/Roaming/360se6/User Data", "AppData/Local/360Chrome/Chrome/User Data",
    "AppData/Local/Tencent/QQBrowser/User Data", "AppData/Local/SogouExplorer/User Data",
    ".config/google-chrome", ".config/chromium", ".config/microsoft-edge", ".config/BraveSoftware/Brave-Browser",
)
_FIREFOX_HOMES = ("AppData/Roaming/Mozilla/Firefox/Profiles", ".mozilla/firefox")
_FIREFOX_DIR = re.compile(r'user_pref\("browser\.download\.dir",\s*"((?:[^"\\]|\\.)*)"\);')
_XDG_DIR = re.compile(r'^XDG_(?:DOWNLOAD|DESKTOP|DOCUMENTS)_DIR="([^"]*)"', re.MULTILINE)


def _chromium_dirs(home: Path) -> Iterable[str]:
    for base in _CHROMIUM_HOMES:
        for prefs in sorted((home / base).glob("*/Preferences")):
            try:
                data = json.loads(prefs.read_text("utf-8"))
                directory = data.get("download", {}).get("default_directory")
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(directory, str) and directory:
                yield directory


def _firefox_dirs(home: Path) -> Iterable[str]:
    for base in _FIREFOX_HOMES:
        for prefs in sorted((home / base).glob("*/prefs.js")):
            try:
                text = prefs.read_text("utf-8", errors="replace")
            except OSError:
                continue
            for match in _FIREFOX_DIR.finditer(text):
                yield json.loads(f'"{match.group(1)}"')


def _xdg_dirs(home: Path) -> Iterable[str]:
    try:
        text = (home / ".config" / "user-dirs.dirs").read_text("utf-8")
    except OSError:
        return
    for match in _XDG_DIR.finditer(text):
        yield match.group(1).replace("$HOME", str(home))


def default_watch_folders(home: Path) -> list[Path]:
    """Existing download/desktop/document folders of `home`, incl. browsers' download folders."""
    candidates = [home / name for name in _STANDARD]
    for found in (*_xdg_dirs(home), *_chromium_dirs(home), *_firefox_dirs(home)):
        candidates.append(Path(found).expanduser())
    folders: list[Path] = []
    seen: set[str] = set()
    for folder in candidates:
        try:
            if not folder.is_dir():
                continue
            key = os.path.normcase(str(folder.resolve()))
        except OSError:
            continue
        if key not in seen:
            seen.add(key)
            folders.append(folder)
    return folders
