"""Fake pywin32 modules emulating named pipes, overlapped I/O, tokens and sessions in-process.

Only what agent/localchannel/windows.py calls is emulated, but with Windows' semantics where they
matter for security and correctness: ImpersonateNamedPipeClient fails before the server has read
from the pipe, FILE_FLAG_FIRST_PIPE_INSTANCE fails on an existing name, reads pend until data or
a close arrives, CancelIo aborts a pending read, and a closed peer gives ERROR_BROKEN_PIPE.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import types
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

ERROR_FILE_NOT_FOUND = 2
ERROR_ACCESS_DENIED = 5
ERROR_BROKEN_PIPE = 109
ERROR_SEM_TIMEOUT = 121
ERROR_PIPE_BUSY = 231
ERROR_NO_DATA = 232
ERROR_PIPE_NOT_CONNECTED = 233
ERROR_OPERATION_ABORTED = 995
ERROR_IO_INCOMPLETE = 996
ERROR_IO_PENDING = 997
ERROR_NO_TOKEN = 1008
ERROR_CANNOT_IMPERSONATE = 1368
FILE_FLAG_FIRST_PIPE_INSTANCE = 0x00080000
WAIT_TIMEOUT = 0x102

SYSTEM_SID = "S-1-5-18"
CONSOLE_USER_SID = "S-1-5-21-1111-2222-3333-1001"
OTHER_USER_SID = "S-1-5-21-1111-2222-3333-1002"


class error(Exception):
    def __init__(self, winerror: int, funcname: str = "", strerror: str = "") -> None:
        super().__init__(winerror, funcname, strerror)
        self.winerror = winerror
        self.funcname = funcname
        self.strerror = strerror


@dataclass(frozen=True)
class Identity:
    pid: int
    sid: str
    session: int


AGENT = Identity(pid=4000, sid=SYSTEM_SID, session=0)
CONSOLE_USER = Identity(pid=5000, sid=CONSOLE_USER_SID, session=1)
OTHER_USER = Identity(pid=6000, sid=OTHER_USER_SID, session=2)

_client: ContextVar[Identity | None] = ContextVar("fake_pywin32_client", default=None)
_ids = itertools.count(100)


class Handle:
    def __init__(self) -> None:
        self.handle = next(_ids)
        self.closed = False


class Event(Handle):
    def __init__(self) -> None:
        super().__init__()
        self.flag = threading.Event()


class OVERLAPPED:
    def __init__(self) -> None:
        self.hEvent: Event | None = None
        self.done = False
        self.count = 0
        self.error = 0


@dataclass
class Direction:
    data: bytearray = field(default_factory=bytearray)
    writer_gone: bool = False
    pending: tuple[OVERLAPPED, Any, PipeEnd] | None = None


@dataclass
class Instance:
    name: str
    server: Identity
    sddl: str | None
    open_mode: int
    pipe_mode: int
    state: str = "created"  # created, listening, connected, disconnected, closed
    client: Identity | None = None
    connect_ov: OVERLAPPED | None = None
    to_server: Direction = field(default_factory=Direction)
    to_client: Direction = field(default_factory=Direction)
    server_has_read: bool = False


class PipeEnd(Handle):
    def __init__(self, instance: Instance, side: str) -> None:
        super().__init__()
        self.instance = instance
        self.side = side

    def incoming(self) -> Direction:
        return self.instance.to_server if self.side == "server" else self.instance.to_client

    def outgoing(self) -> Direction:
        return self.instance.to_client if self.side == "server" else self.instance.to_server


@dataclass(frozen=True)
class Token:
    sid: str


@dataclass(frozen=True)
class Sid:
    text: str


class SecurityDescriptor:
    def __init__(self, sddl: str) -> None:
        self.sddl = sddl


class SECURITY_ATTRIBUTES:
    def __init__(self) -> None:
        self.SECURITY_DESCRIPTOR: SecurityDescriptor | None = None
        self.bInheritHandle = True


def _complete(ov: OVERLAPPED | None, count: int, err: int = 0) -> None:
    if ov is None:
        return
    ov.done, ov.count, ov.error = True, count, err
    if ov.hEvent is not None:
        ov.hEvent.flag.set()


class Kernel:
    """The fake OS: pipe namespace, sessions and the identities of processes."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.instances: dict[str, list[Instance]] = {}
        self.created: list[Instance] = []
        self.console_session = CONSOLE_USER.session
        self.session_users = {CONSOLE_USER.session: CONSOLE_USER.sid, OTHER_USER.session: OTHER_USER.sid}
        self.agent = AGENT
        self.pids: dict[int, Identity] = {i.pid: i for i in (AGENT, CONSOLE_USER, OTHER_USER)}
        self._impersonating = threading.local()

    @contextlib.contextmanager
    def as_client(self, identity: Identity) -> Iterator[None]:
        self.pids[identity.pid] = identity
        token = _client.set(identity)
        try:
            yield
        finally:
            _client.reset(token)

    def squat(self, name: str, identity: Identity) -> None:
        """Another process creates the pipe name first."""
        with self.lock:
            self.pids[identity.pid] = identity
            self.instances.setdefault(name, []).append(Instance(name, identity, None, 0, 0, state="listening"))

    # --- win32pipe ---------------------------------------------------------------------------

    def CreateNamedPipe(self, name: str, open_mode: int, pipe_mode: int, max_instances: int,
                        out_size: int, in_size: int, timeout: int, sa: SECURITY_ATTRIBUTES | None) -> PipeEnd:
        with self.lock:
            live = [i for i in self.instances.get(name, []) if i.state != "closed"]
            if open_mode & FILE_FLAG_FIRST_PIPE_INSTANCE and live:
                raise error(ERROR_ACCESS_DENIED, "CreateNamedPipe", "Access is denied.")
            sddl = sa.SECURITY_DESCRIPTOR.sddl if sa and sa.SECURITY_DESCRIPTOR else None
            instance = Instance(name, self.agent, sddl, open_mode, pipe_mode)
            self.instances.setdefault(name, []).append(instance)
            self.created.append(instance)
            return PipeEnd(instance, "server")

    def ConnectNamedPipe(self, handle: PipeEnd, overlapped: OVERLAPPED | None = None) -> int:
        with self.lock:
            handle.instance.state = "listening"
            handle.instance.connect_ov = overlapped
            self.lock.notify_all()
            return ERROR_IO_PENDING

    def WaitNamedPipe(self, name: str, timeout_ms: int) -> None:
        with self.lock:
            ready = self.lock.wait_for(
                lambda: any(i.state == "listening" for i in self.instances.get(name, [])), timeout_ms / 1000
            )
            if not ready:
                raise error(ERROR_SEM_TIMEOUT, "WaitNamedPipe", "The semaphore timeout period has expired.")

    def GetNamedPipeClientProcessId(self, handle: PipeEnd) -> int:
        assert handle.instance.client is not None
        return handle.instance.client.pid

    def GetNamedPipeServerProcessId(self, handle: PipeEnd) -> int:
        return handle.instance.server.pid

    def ImpersonateNamedPipeClient(self, handle: PipeEnd) -> None:
        if not handle.instance.server_has_read:
            raise error(ERROR_CANNOT_IMPERSONATE, "ImpersonateNamedPipeClient", "cannot impersonate before a read")
        self._impersonating.identity = handle.instance.client

    # --- win32file ---------------------------------------------------------------------------

    def CreateFile(self, name: str, access: int, share: int, sa: Any, creation: int, flags: int,
                   template: Any) -> PipeEnd:
        with self.lock:
            live = [i for i in self.instances.get(name, []) if i.state != "closed"]
            if not live:
                raise error(ERROR_FILE_NOT_FOUND, "CreateFile", "The system cannot find the file specified.")
            listening = [i for i in live if i.state == "listening"]
            if not listening:
                raise error(ERROR_PIPE_BUSY, "CreateFile", "All pipe instances are busy.")
            instance = listening[0]
            instance.state = "connected"
            instance.client = _client.get() or CONSOLE_USER
            self.pids.setdefault(instance.client.pid, instance.client)
            _complete(instance.connect_ov, 0)
            return PipeEnd(instance, "client")

    def AllocateReadBuffer(self, size: int) -> bytearray:
        return bytearray(size)

    def ReadFile(self, handle: PipeEnd, buffer: bytearray, overlapped: OVERLAPPED) -> tuple[int, bytearray]:
        with self.lock:
            direction = handle.incoming()
            if direction.data:
                self._deliver(direction, overlapped, buffer, handle)
                return 0, buffer
            if direction.writer_gone or handle.instance.state in ("disconnected", "closed"):
                raise error(ERROR_BROKEN_PIPE, "ReadFile", "The pipe has been ended.")
            overlapped.done = False
            direction.pending = (overlapped, buffer, handle)
            return ERROR_IO_PENDING, buffer

    def WriteFile(self, handle: PipeEnd, data: bytes, overlapped: OVERLAPPED) -> tuple[int, int]:
        with self.lock:
            direction = handle.outgoing()
            if handle.instance.state != "connected" or handle.incoming().writer_gone:
                raise error(ERROR_NO_DATA, "WriteFile", "The pipe is being closed.")
            direction.data += data
            if direction.pending is not None:
                pending_ov, pending_buffer, reader = direction.pending
                direction.pending = None
                self._deliver(direction, pending_ov, pending_buffer, reader)
            _complete(overlapped, len(data))
            return 0, len(data)

    def GetOverlappedResult(self, handle: Handle, overlapped: OVERLAPPED, wait: bool) -> int:
        if not overlapped.done:
            if not wait:
                raise error(ERROR_IO_INCOMPLETE, "GetOverlappedResult", "Overlapped I/O event is not signaled.")
            assert overlapped.hEvent is not None
            overlapped.hEvent.flag.wait(10)
        if overlapped.error:
            raise error(overlapped.error, "GetOverlappedResult", "overlapped operation failed")
        return overlapped.count

    def CancelIo(self, handle: PipeEnd) -> None:
        with self.lock:
            direction = handle.incoming()
            if direction.pending is not None and direction.pending[2] is handle:
                self._fail_pending(direction, ERROR_OPERATION_ABORTED)
            instance = handle.instance
            if handle.side == "server" and instance.state == "listening":
                instance.state = "created"
                _complete(instance.connect_ov, 0, ERROR_OPERATION_ABORTED)

    def CloseHandle(self, handle: Handle) -> None:
        with self.lock:
            handle.closed = True
            if not isinstance(handle, PipeEnd):
                return
            instance = handle.instance
            handle.outgoing().writer_gone = True
            self._fail_pending(handle.outgoing(), ERROR_BROKEN_PIPE)
            if handle.side == "server":
                instance.state = "closed"
                if instance.connect_ov is not None and not instance.connect_ov.done:
                    _complete(instance.connect_ov, 0, ERROR_OPERATION_ABORTED)

    def _deliver(self, direction: Direction, overlapped: OVERLAPPED, buffer: bytearray, reader: PipeEnd) -> None:
        count = min(len(buffer), len(direction.data))
        buffer[:count] = direction.data[:count]
        del direction.data[:count]
        if reader.side == "server":
            reader.instance.server_has_read = True
        _complete(overlapped, count)

    def _fail_pending(self, direction: Direction, code: int) -> None:
        if direction.pending is not None:
            overlapped, _buffer, _reader = direction.pending
            direction.pending = None
            _complete(overlapped, 0, code)

    # --- win32event --------------------------------------------------------------------------

    def CreateEvent(self, sa: Any, manual_reset: bool, initial: bool, name: Any) -> Event:
        event = Event()
        if initial:
            event.flag.set()
        return event

    def SetEvent(self, event: Event) -> None:
        event.flag.set()

    def ResetEvent(self, event: Event) -> None:
        event.flag.clear()

    def WaitForSingleObject(self, event: Event, timeout_ms: int) -> int:
        return 0 if event.flag.wait(timeout_ms / 1000) else WAIT_TIMEOUT

    # --- win32security / win32api / win32ts --------------------------------------------------

    def OpenThreadToken(self, thread: Any, access: int, open_as_self: bool) -> Token:
        identity = getattr(self._impersonating, "identity", None)
        if identity is None:
            raise error(ERROR_NO_TOKEN, "OpenThreadToken", "no impersonation token on this thread")
        return Token(identity.sid)

    def RevertToSelf(self) -> None:
        self._impersonating.identity = None

    def impersonating(self) -> Identity | None:
        return getattr(self._impersonating, "identity", None)

    def OpenProcessToken(self, process: Any, access: int) -> Token:
        return Token(self.agent.sid)

    def GetTokenInformation(self, token: Token, info_class: int) -> tuple[Sid, int]:
        assert info_class == 1, "only TokenUser is emulated"
        return Sid(token.sid), 0

    def ConvertSidToStringSid(self, sid: Sid) -> str:
        return sid.text

    def ConvertStringSecurityDescriptorToSecurityDescriptor(self, sddl: str, revision: int) -> SecurityDescriptor:
        assert revision == 1
        return SecurityDescriptor(sddl)

    def WTSGetActiveConsoleSessionId(self) -> int:
        return self.console_session

    def WTSQueryUserToken(self, session: int) -> Token:
        sid = self.session_users.get(session)
        if sid is None:
            raise error(ERROR_NO_TOKEN, "WTSQueryUserToken", "no user logged on to the session")
        return Token(sid)

    def ProcessIdToSessionId(self, pid: int) -> int:
        return self.pids[pid].session


def install(kernel: Kernel) -> dict[str, types.ModuleType]:
    """Module objects named like pywin32's, bound to the kernel; put them in sys.modules."""
    names = {
        "win32pipe": ["CreateNamedPipe", "ConnectNamedPipe", "WaitNamedPipe",
                      "GetNamedPipeClientProcessId", "GetNamedPipeServerProcessId", "ImpersonateNamedPipeClient"],
        "win32file": ["CreateFile", "AllocateReadBuffer", "ReadFile", "WriteFile", "GetOverlappedResult",
                      "CancelIo", "CloseHandle"],
        "win32event": ["CreateEvent", "SetEvent", "ResetEvent", "WaitForSingleObject"],
        "win32security": ["OpenThreadToken", "RevertToSelf", "OpenProcessToken", "GetTokenInformation",
                          "ConvertSidToStringSid", "ConvertStringSecurityDescriptorToSecurityDescriptor"],
        "win32ts": ["WTSGetActiveConsoleSessionId", "WTSQueryUserToken", "ProcessIdToSessionId"],
    }
    modules: dict[str, types.ModuleType] = {}
    for module_name, functions in names.items():
        module = types.ModuleType(module_name)
        for function in functions:
            setattr(module, function, getattr(kernel, function))
        modules[module_name] = module
    modules["win32security"].SECURITY_ATTRIBUTES = SECURITY_ATTRIBUTES  # type: ignore[attr-defined]
    win32api = types.ModuleType("win32api")
    win32api.GetCurrentThread = lambda: "current-thread"  # type: ignore[attr-defined]
    win32api.GetCurrentProcess = lambda: "current-process"  # type: ignore[attr-defined]
    modules["win32api"] = win32api
    pywintypes = types.ModuleType("pywintypes")
    pywintypes.error = error  # type: ignore[attr-defined]
    pywintypes.OVERLAPPED = OVERLAPPED  # type: ignore[attr-defined]
    modules["pywintypes"] = pywintypes
    return modules
