"""Which process is writing a file, where the OS will say: asked while the file is being written.

Neither inotify nor ReadDirectoryChangesW names the process behind a file event, so the export
sensor asks, for files it has just seen appear or grow, which processes hold them open:

* Linux: every `/proc/PID/fd/N` link that points at the file, opened for writing (the access
  mode in `/proc/PID/fdinfo/N`), so a reader such as an antivirus or our own scan is not taken
  for the writer. One walk of /proc answers for all the files asked about at once. Processes of
  other users are visible to the agent's service (root); run unprivileged, only one's own.
* Windows: the Restart Manager (`RmGetList`), the API Explorer uses to say "the file is open in
  …"; it lists the processes holding a file, without the access mode.
* A fake for tests.

A writer that opened, wrote and closed the file between two looks is not found: the answer is
best effort, and `FileWritten.process` stays None then.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from collections.abc import Callable, Collection, Mapping
from typing import Any, Protocol

from agent.sensors.observations import ProcessInfo
from agent.sensors.procinfo import read_info

log = logging.getLogger(__name__)

_ACCESS_MODE = 0o3  # O_ACCMODE; O_WRONLY = 1, O_RDWR = 2


class FileWriters(Protocol):
    def writers(self, paths: Collection[str]) -> dict[str, ProcessInfo]: ...


class FakeWriters:
    def __init__(self, answers: Mapping[str, ProcessInfo] | None = None) -> None:
        self.answers = dict(answers or {})
        self.asked: list[set[str]] = []

    def writers(self, paths: Collection[str]) -> dict[str, ProcessInfo]:
        self.asked.append(set(paths))
        return {path: self.answers[path] for path in paths if path in self.answers}


class LinuxWriters:
    def __init__(self, proc: str = "/proc", *, own_pid: int | None = None) -> None:
        self._proc = proc
        self._own_pid = os.getpid() if own_pid is None else own_pid

    def writers(self, paths: Collection[str]) -> dict[str, ProcessInfo]:
        wanted = {os.path.realpath(path): path for path in paths}
        found: dict[str, int] = {}
        for pid in self._pids():
            for target in self._written_by(pid, wanted):
                found.setdefault(wanted[target], pid)
            if len(found) == len(wanted):
                break
        described = {path: read_info(pid) for path, pid in found.items()}
        return {path: info for path, info in described.items() if info is not None}

    def _pids(self) -> list[int]:
        try:
            names = os.listdir(self._proc)
        except OSError:
            return []
        return [int(name) for name in names if name.isdigit() and int(name) != self._own_pid]

    def _written_by(self, pid: int, wanted: Mapping[str, str]) -> list[str]:
        """The wanted files `pid` has open for writing (its fds that went away are skipped)."""
        fd_dir = f"{self._proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:  # exited, or another user's process while unprivileged
            return []
        hits: list[str] = []
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if target in wanted and self._writable(pid, fd):
                hits.append(target)
        return hits

    def _writable(self, pid: int, fd: str) -> bool:
        try:
            with open(f"{self._proc}/{pid}/fdinfo/{fd}", encoding="ascii") as info:
                for line in info:
                    if line.startswith("flags:"):
                        return int(line.split()[1], 8) & _ACCESS_MODE != 0
        except (OSError, ValueError):
            return False
        return False


# --- Windows: Restart Manager -------------------------------------------------------------

CCH_RM_SESSION_KEY = 32
CCH_RM_MAX_APP_NAME = 255
CCH_RM_MAX_SVC_NAME = 63
ERROR_MORE_DATA = 234
MAX_HOLDERS = 16  # room for this many holders of one file on the first ask
MAX_HOLDERS_ASKED = 1024  # and at most this many on the second


class _FileTime(ctypes.Structure):
    _fields_ = [("dwLowDateTime", ctypes.c_uint32), ("dwHighDateTime", ctypes.c_uint32)]


class _UniqueProcess(ctypes.Structure):
    _fields_ = [("dwProcessId", ctypes.c_uint32), ("ProcessStartTime", _FileTime)]


class RmProcessInfo(ctypes.Structure):
    _fields_ = [
        ("Process", _UniqueProcess),
        ("strAppName", ctypes.c_wchar * (CCH_RM_MAX_APP_NAME + 1)),
        ("strServiceShortName", ctypes.c_wchar * (CCH_RM_MAX_SVC_NAME + 1)),
        ("ApplicationType", ctypes.c_int),
        ("AppStatus", ctypes.c_uint32),
        ("TSSessionId", ctypes.c_uint32),
        ("bRestartable", ctypes.c_int),
    ]


def _load_rstrtmgr() -> Any:
    loader = getattr(ctypes, "WinDLL", None)
    if loader is None:
        raise OSError("the Restart Manager is only available on Windows")
    api = loader("rstrtmgr")
    u32, p_u32 = ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32)
    api.RmStartSession.argtypes = [p_u32, u32, ctypes.c_wchar_p]
    api.RmRegisterResources.argtypes = [u32, u32, ctypes.POINTER(ctypes.c_wchar_p), u32, ctypes.c_void_p,
                                        u32, ctypes.c_void_p]
    api.RmGetList.argtypes = [u32, p_u32, p_u32, ctypes.POINTER(RmProcessInfo), p_u32]
    api.RmEndSession.argtypes = [u32]
    for name in ("RmStartSession", "RmRegisterResources", "RmGetList", "RmEndSession"):
        getattr(api, name).restype = u32
    return api


class WindowsWriters:
    """`RmGetList` per file, in a Restart Manager session of its own. `rstrtmgr` is injectable."""

    def __init__(self, rstrtmgr: Any | None = None, *, own_pid: int | None = None,
                 describe_pid: Callable[[int], ProcessInfo | None] = read_info) -> None:
        self._api = rstrtmgr
        self._own_pid = os.getpid() if own_pid is None else own_pid
        self._describe = describe_pid

    def writers(self, paths: Collection[str]) -> dict[str, ProcessInfo]:
        api = self._api if self._api is not None else _load_rstrtmgr()
        self._api = api
        found: dict[str, ProcessInfo] = {}
        for path in paths:
            info = next(filter(None, map(self._describe, self._holders(api, path))), None)
            if info is not None:
                found[path] = info
        return found

    def _holders(self, api: Any, path: str) -> list[int]:
        session = ctypes.c_uint32()
        key = ctypes.create_unicode_buffer(CCH_RM_SESSION_KEY + 1)
        if api.RmStartSession(ctypes.byref(session), 0, key) != 0:
            return []
        try:
            files = (ctypes.c_wchar_p * 1)(path)
            if api.RmRegisterResources(session.value, 1, files, 0, None, 0, None) != 0:
                return []
            pids = self._listed(api, session.value)
            return [pid for pid in pids if pid != self._own_pid]
        finally:
            api.RmEndSession(session.value)

    @staticmethod
    def _listed(api: Any, session: int) -> list[int]:
        """The pids RmGetList names; asked again with room for all when the first array was short."""
        room = MAX_HOLDERS
        for _ in range(2):
            needed, count, reasons = ctypes.c_uint32(), ctypes.c_uint32(room), ctypes.c_uint32()
            holders = (RmProcessInfo * room)()
            status = api.RmGetList(session, ctypes.byref(needed), ctypes.byref(count), holders,
                                         ctypes.byref(reasons))
            if status == 0:
                return [holders[index].Process.dwProcessId for index in range(min(count.value, room))]
            if status != ERROR_MORE_DATA:
                break
            room = min(max(needed.value, room), MAX_HOLDERS_ASKED)
        return []


def default_writers() -> FileWriters:
    return WindowsWriters() if sys.platform == "win32" else LinuxWriters()
