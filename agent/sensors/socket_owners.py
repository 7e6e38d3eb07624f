"""Which process owns a socket, found by its inode, only for the sockets asked about (Linux).

The kernel's socket tables carry no pid; the owner is the process with a file descriptor whose
link reads ``socket:[<inode>]``. Finding it means reading the fd links of every process, so that
walk runs only for sockets not resolved before, stops as soon as all of them are found, and goes
through processes in increasing pid order so the owner is the one psutil would name (the lowest
pid holding the socket, usually the parent of a process that inherited it).

A found owner is remembered as (pid, fd) and checked with one readlink per use: when that fd no
longer holds the socket (the owner closed it or exited), the owner is looked up again. A socket
whose owner is not found (another pid namespace, or a descriptor in flight) is retried after
``retry_s``, not on every tick.

Known limit: a process that inherits an already resolved socket while the first owner keeps it
is not named; psutil names only one owner per socket as well.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable

PROC = "/proc"


class SocketOwners:
    def __init__(self, proc_root: str = PROC, *, retry_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._root = proc_root
        self._retry_s = retry_s
        self._clock = clock
        self._known: dict[int, tuple[int, int]] = {}  # inode -> (pid, fd)
        self._missing: dict[int, float] = {}  # inode -> when to look for its owner again
        self.walks = 0

    def retain(self, inodes: Iterable[int]) -> None:
        """Forget every socket not among ``inodes`` (the sockets that exist now)."""
        present = set(inodes)
        for cache in (self._known, self._missing):
            for inode in cache.keys() - present:
                del cache[inode]

    def lookup(self, inodes: set[int]) -> dict[int, int | None]:
        """inode -> owning pid, or None when no process could be found holding it."""
        now = self._clock()
        owners: dict[int, int | None] = {}
        todo: set[int] = set()
        for inode in inodes:
            known = self._known.get(inode)
            if known is not None and self._holds(known, inode):
                owners[inode] = known[0]
            elif inode in self._missing and now < self._missing[inode]:
                owners[inode] = None
            else:
                todo.add(inode)
        if todo:
            found = self._walk(todo)
            for inode in todo:
                owner = found.get(inode)
                if owner is None:
                    self._known.pop(inode, None)
                    self._missing[inode] = now + self._retry_s
                    owners[inode] = None
                else:
                    self._known[inode] = owner
                    self._missing.pop(inode, None)
                    owners[inode] = owner[0]
        return owners

    def _holds(self, owner: tuple[int, int], inode: int) -> bool:
        pid, fd = owner
        try:
            return os.readlink(f"{self._root}/{pid}/fd/{fd}") == f"socket:[{inode}]"
        except OSError:
            return False

    def _walk(self, inodes: set[int]) -> dict[int, tuple[int, int]]:
        self.walks += 1
        wanted = {f"socket:[{inode}]": inode for inode in inodes}
        found: dict[int, tuple[int, int]] = {}
        try:
            pids = sorted(int(name) for name in os.listdir(self._root) if name.isdigit())
        except OSError:
            return found
        for pid in pids:
            fd_dir = f"{self._root}/{pid}/fd"
            try:
                fds = os.listdir(fd_dir)
            except OSError:  # gone, or not ours to read
                continue
            for fd in fds:
                try:
                    inode = wanted.pop(os.readlink(f"{fd_dir}/{fd}"), None)
                except OSError:
                    continue
                if inode is not None:
                    found[inode] = (pid, int(fd))
                    if not wanted:
                        return found
        return found
