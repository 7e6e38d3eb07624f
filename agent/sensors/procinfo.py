"""Reading one process into a ProcessInfo: psutil hygiene in one place (STYLE.md #7).

Every read is per process: a process that exits while it is read raises NoSuchProcess (the
caller counts it and moves on); a field the OS refuses (AccessDenied, or a zombie's exe) becomes
None instead of failing the whole record.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import psutil

from agent.sensors.observations import ProcessInfo

ATTRS = ["pid", "ppid", "name", "exe", "cmdline", "username", "create_time"]

# What a process runs: it changes, under the same pid and create time, when the process execs.
Image = tuple[str | None, tuple[str, ...]]


def read_raw(proc: psutil.Process) -> dict[str, Any]:
    """One consistent read of a process's basic attributes; raises psutil.NoSuchProcess if gone."""
    with proc.oneshot():
        return proc.as_dict(attrs=ATTRS, ad_value=None)


def info_from_raw(raw: dict[str, Any]) -> ProcessInfo:
    cmdline = raw.get("cmdline") or ()
    return ProcessInfo(
        pid=int(raw["pid"]),
        name=str(raw.get("name") or ""),
        ppid=raw.get("ppid"),
        # psutil gives "" for kernel threads and some zombies: there is no executable to name.
        exe=raw.get("exe") or None,
        cmdline=tuple(str(part) for part in cmdline),
        user=raw.get("username") or None,
        create_time=raw.get("create_time"),
    )


def open_info(pid: int) -> tuple[psutil.Process, ProcessInfo] | None:
    """The process handle and its info, or None when it has gone or cannot be opened at all."""
    try:
        proc = psutil.Process(pid)
        return proc, info_from_raw(read_raw(proc))
    except (psutil.NoSuchProcess, psutil.AccessDenied):  # ZombieProcess is a NoSuchProcess
        return None


def read_info(pid: int) -> ProcessInfo | None:
    opened = open_info(pid)
    return opened[1] if opened is not None else None


def read_image(proc: psutil.Process) -> Image | None:
    """(exe, cmdline) as they are now; None when the process is gone, a zombie or refuses.

    Two reads through a handle kept from the first look: this runs every tick for each young
    process, so it must not pay for a new handle (a create-time read) each time.
    """
    try:
        with proc.oneshot():
            return _exe_now(proc), tuple(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _exe_now(proc: psutil.Process) -> str | None:
    """The executable as it is now. psutil caches `exe()` on a handle, so after an exec (Debian's
    `/usr/bin/chromium` is a shell script that execs the browser) it kept naming the shell, and
    every tick looked like a new exec. Only Linux replaces a running image; Windows cannot."""
    if not sys.platform.startswith("linux"):
        return proc.exe() or None
    try:
        target = os.readlink(f"/proc/{proc.pid}/exe")
    except FileNotFoundError:
        if not proc.is_running():
            raise psutil.NoSuchProcess(proc.pid) from None
        return None  # a kernel thread or a zombie: no executable to name
    except PermissionError:
        raise psutil.AccessDenied(proc.pid) from None
    return target.removesuffix(" (deleted)") or None


def image_of(info: ProcessInfo) -> Image:
    return info.exe, info.cmdline


def is_parent_of(parent: ProcessInfo, child: ProcessInfo) -> bool:
    """False when the parent pid was reused: a parent cannot start after its child.

    Windows reuses pids quickly and keeps the dead parent's pid in the child; the 0.01 s slack
    covers Linux's clock-tick resolution of create times.
    """
    if parent.create_time is None or child.create_time is None:
        return True
    return parent.create_time <= child.create_time + 0.01
