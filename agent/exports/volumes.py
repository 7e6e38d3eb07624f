"""Removable drives (USB sticks, SD cards) and the default folders exports land in.

Behind one small interface: Linux reads psutil's mounted partitions and sysfs
(`/sys/class/block/<dev>` -> the disk's `removable` flag, or a USB bus in its device path, since
USB hard disks report removable=0); Windows asks GetDriveTypeW for DRIVE_REMOVABLE (a USB hard
disk reports DRIVE_FIXED there and is not covered); a fake serves tests.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import re
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


class LinuxVolumes:
    def __init__(self, partitions: Callable[..., list[Any]] = psutil.disk_partitions,
                 sys_root: Path = Path("/sys")) -> None:
        self._partitions = partitions
        self._sys = sys_root

    def removable_mounts(self) -> list[Path]:
        try:
            parts = self._partitions(all=False)
        except OSError as exc:
            log.warning("cannot list partitions: %s", exc)
            return []
        return [Path(part.mountpoint) for part in parts
                if part.device.startswith("/dev/") and self._removable(Path(part.device).name)]

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
    return WindowsVolumes() if sys.platform == "win32" else LinuxVolumes()


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
