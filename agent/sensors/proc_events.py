"""Linux process events (the netlink proc connector): the kernel says when a process starts.

With this, the process sensor sleeps until a process forks or execs, instead of waking five
times a second to ask /proc, and the fork events name the new pids, so a tick need not list
/proc either. A lost event (socket buffer overrun, reported as ENOBUFS) makes the next tick list
pids as polling does, and a periodic listing covers anything missed altogether. The pids are
those of the kernel's initial pid namespace; the self-test below proves they are also ours.

New threads also raise fork events; those are recognised (pid != thread-group id) and ignored,
as are exits (the sensor's periodic listing forgets ended processes), so a busy multithreaded
program does not keep the sensor ticking. A small socket filter (classic BPF) does that sorting
in the kernel, so those events do not even wake the sensor's thread; where the filter cannot be
attached the same test runs here.

Subscribing needs CAP_NET_ADMIN (the service runs as root) and a kernel with
CONFIG_PROC_EVENTS; inside a container the events may carry pids of another namespace, or none
at all. ``ProcessEvents.open`` therefore proves the channel before it is used: it starts a
thread of its own and waits for the kernel to report it. Anything short of that returns None,
and the sensor polls as before.
"""

from __future__ import annotations

import array
import contextlib
import errno
import logging
import os
import select
import socket
import struct
import sys
import threading
import time

log = logging.getLogger(__name__)

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
NLMSG_DONE = 3
PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXEC = 0x00000002
_NLMSG = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_CN_MSG = struct.Struct("=IIIIHH")  # idx, val, seq, ack, len, flags
_EVENT = struct.Struct("=IIQ")  # what, cpu, timestamp_ns; the event's data follows
_PIDS = struct.Struct("=iiii")  # fork: parent pid, parent tgid, child pid, child tgid; exec/exit: pid, tgid
_DATA_AT = _NLMSG.size + _CN_MSG.size + _EVENT.size
RECV_BYTES = 4096
SO_ATTACH_FILTER = 26
MAX_STARTED = 4096  # new pids kept between two ticks; beyond that the sensor lists instead
RCVBUF_BYTES = 1 << 20  # room for a burst of events while the sensor thread is busy
SELF_TEST_S = 1.0


def _control(op: int) -> bytes:
    body = struct.pack("=I", op)
    cn = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(body), 0) + body
    return _NLMSG.pack(_NLMSG.size + len(cn), NLMSG_DONE, 0, 0, 0) + cn


def parse_event(data: bytes) -> tuple[int, tuple[int, int, int, int]] | None:
    """(what, pids) of one proc connector message; None when it is too short to be one."""
    if len(data) < _DATA_AT + _PIDS.size:
        return None
    what = _EVENT.unpack_from(data, _NLMSG.size + _CN_MSG.size)[0]
    return what, _PIDS.unpack_from(data, _DATA_AT)


def _bpf_word(value: int) -> int:
    """A host-order u32 as a BPF absolute load sees it (BPF loads words in network order)."""
    return int.from_bytes(struct.pack("=I", value), "big")


def process_start_filter() -> bytes:
    """Classic BPF: keep exec events and forks whose child pid equals its tgid; drop the rest."""
    what_at, child_pid_at, child_tgid_at = _DATA_AT - _EVENT.size, _DATA_AT + 8, _DATA_AT + 12
    ld_w, ldx_a, jeq_k, jeq_x, ret = 0x20, 0x07, 0x15, 0x1D, 0x06  # BPF_LD|W|ABS, TAX, JEQ K/X, RET
    program = [
        (ld_w, 0, 0, what_at),
        (jeq_k, 5, 0, _bpf_word(PROC_EVENT_EXEC)),  # -> keep
        (jeq_k, 0, 5, _bpf_word(PROC_EVENT_FORK)),  # else -> drop
        (ld_w, 0, 0, child_tgid_at),
        (ldx_a, 0, 0, 0),
        (ld_w, 0, 0, child_pid_at),
        (jeq_x, 0, 1, 0),  # a thread's pid differs from its group's -> drop
        (ret, 0, 0, 0xFFFFFFFF),  # keep
        (ret, 0, 0, 0),  # drop
    ]
    return b"".join(struct.pack("=HBBI", *insn) for insn in program)


def attach_filter(sock: socket.socket, code: bytes) -> None:
    """SO_ATTACH_FILTER takes a pointer to the program; the kernel copies it during the call."""
    insns = array.array("B", code)
    address, _ = insns.buffer_info()
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("@HP", len(code) // 8, address))


def starts_a_process(what: int, pids: tuple[int, int, int, int]) -> bool:
    """True for a new process (not a thread) and for an exec."""
    if what == PROC_EVENT_FORK:
        return pids[2] == pids[3]  # child pid == child tgid: a new process, not a thread
    return what == PROC_EVENT_EXEC


class ProcessEvents:
    """A subscribed proc connector socket. ``changed()`` has ``LastPidHint.changed()``'s meaning."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._pending = False
        self._started: set[int] = set()
        self._lost = False  # events were dropped (or too many kept): the pids above are not all
        self._lock = threading.Lock()
        self._closed = False
        self.healthy = True
        self.events = 0  # process starts and execs seen (threads' and exits are not counted)
        self.overruns = 0  # times the kernel dropped events because the buffer was full

    @classmethod
    def open(cls, *, platform_name: str | None = None, self_test_s: float = SELF_TEST_S) -> ProcessEvents | None:
        """Subscribed and proven to deliver this process's own events; None where that fails."""
        if not (platform_name or sys.platform).startswith("linux"):
            return None
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        except OSError as exc:
            log.info("process events unavailable (%s); polling for new processes", exc)
            return None
        subscribed = False
        try:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
            sock.bind((0, CN_IDX_PROC))
            sock.send(_control(PROC_CN_MCAST_LISTEN))
            subscribed = True
            if not _sees_own_thread(sock, self_test_s):
                raise OSError(errno.ENODATA, "no event for a thread of this process")
            try:  # after the self-test: the probe is a thread, which the filter drops
                attach_filter(sock, process_start_filter())
            except OSError as exc:
                log.info("process event filter not attached (%s); threads' events are sorted here", exc)
            sock.setblocking(False)
        except OSError as exc:
            log.info("process events unavailable (%s); polling for new processes", exc)
            _close(sock, subscribed=subscribed)
            return None
        return cls(sock)

    def changed(self) -> bool:
        """True when a process may have started since the previous call (or of ``take_started``)."""
        if not self.healthy:
            return True
        self._drain()
        with self._lock:
            pending, self._pending = self._pending, False
            self._started, self._lost = set(), False
        return pending or not self.healthy

    def take_started(self) -> set[int] | None:
        """Pids of the processes started since the previous call; None when some may be missing
        (events were dropped, or the channel broke), and the caller must list pids instead."""
        if not self.healthy:
            return None
        self._drain()
        with self._lock:
            started, lost = self._started, self._lost
            self._started, self._lost, self._pending = set(), False, False
        return None if lost or not self.healthy else started

    def wait(self, timeout: float) -> None:
        """Return when a process event is pending, on ``wake()``, or after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            if self._pending and self.healthy:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            watched: list[int | socket.socket] = [self._wake_r, self._sock] if self.healthy else [self._wake_r]
            try:
                ready, _, _ = select.select(watched, [], [], remaining)
            except (OSError, ValueError):  # closed by close() meanwhile
                return
            if self._wake_r in ready:
                with contextlib.suppress(OSError):
                    os.read(self._wake_r, 64)
                return
            if ready:
                self._drain()

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def close(self) -> None:
        """Unsubscribe. ``wait`` and ``wake`` keep working (as a plain timed wait), so a sensor
        restarted on a closed channel polls."""
        if self._closed:
            return
        self._closed = True
        self.healthy = False
        _close(self._sock, subscribed=True)

    def _note_started(self, pid: int) -> None:
        with self._lock:
            if len(self._started) < MAX_STARTED:
                self._started.add(pid)
            else:
                self._lost = True

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter exit the modules may be gone
            self.close()
            for fd in (self._wake_r, self._wake_w):
                os.close(fd)

    def _drain(self) -> None:
        seen = False
        while True:
            try:
                data = self._sock.recv(RECV_BYTES)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # events were dropped: anything may have started
                    self.overruns += 1
                    seen = self._lost = True
                    continue
                log.warning("process events failed (%s); polling for new processes from now on", exc)
                self.healthy = False
                break
            event = parse_event(data)
            if event is not None and starts_a_process(*event):
                self.events += 1
                seen = True
                if event[0] == PROC_EVENT_FORK:
                    self._note_started(event[1][3])
        if seen:
            with self._lock:
                self._pending = True


def _sees_own_thread(sock: socket.socket, timeout: float) -> bool:
    """Start a thread and wait for the kernel's fork event naming it (pid namespace included)."""
    thread = threading.Thread(target=lambda: None, name="tg-proc-events-probe", daemon=True)
    thread.start()
    tid, tgid = thread.native_id, os.getpid()
    thread.join()
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([sock], [], [], remaining)
        if not ready:
            return False
        try:
            event = parse_event(sock.recv(RECV_BYTES))
        except OSError as exc:
            if exc.errno == errno.ENOBUFS:
                continue  # a burst from elsewhere overran the buffer; ours may still come
            raise
        if event is not None and event[0] == PROC_EVENT_FORK and event[1][2:] == (tid, tgid):
            return True
    return False


def _close(sock: socket.socket, *, subscribed: bool) -> None:
    # Older kernels count listeners globally: each LISTEN needs exactly one IGNORE, never more.
    if subscribed:
        with contextlib.suppress(OSError):
            sock.send(_control(PROC_CN_MCAST_IGNORE))
    sock.close()
