r"""Windows local channel: the named pipe ``\\.\pipe\TerminalGuard``, peers checked by SID.

Threats handled here, not left to the caller:
- *another user talks to the agent*: every connection's client is impersonated once it has sent
  data (Windows refuses impersonation before that) and its token's user SID must be SYSTEM, the
  agent's own account, or the user of the active console session;
- *pipe squatting* (a user process creates the pipe first and poses as the agent): the agent
  creates the first instance with FILE_FLAG_FIRST_PIPE_INSTANCE and fails loudly if the name is
  taken; the DACL grants users read/write but not FILE_CREATE_PIPE_INSTANCE; and the client only
  talks to a server process running in session 0, where only services live;
- *remote clients*: PIPE_REJECT_REMOTE_CLIENTS.

pywin32 is imported lazily so this module imports on Linux, where it is tested against fake
pywin32 modules that emulate the pipe semantics.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from agent.localchannel.transport import Peer, TransportUnavailable, UntrustedServer

log = logging.getLogger(__name__)

PIPE_NAME = r"\\.\pipe\TerminalGuard"
SYSTEM_SID = "S-1-5-18"

# Win32 constants (stable ABI values), spelled out so the code does not depend on win32con.
PIPE_ACCESS_DUPLEX = 0x00000003
FILE_FLAG_OVERLAPPED = 0x40000000
FILE_FLAG_FIRST_PIPE_INSTANCE = 0x00080000
PIPE_TYPE_BYTE = 0x00000000
PIPE_READMODE_BYTE = 0x00000000
PIPE_WAIT = 0x00000000
PIPE_REJECT_REMOTE_CLIENTS = 0x00000008
PIPE_UNLIMITED_INSTANCES = 255
GENERIC_READ = 0x80000000
GENERIC_WRITE = 0x40000000
OPEN_EXISTING = 3
TOKEN_QUERY = 0x0008
TOKEN_USER = 1  # TOKEN_INFORMATION_CLASS.TokenUser
WAIT_OBJECT_0 = 0
WAIT_TIMEOUT = 0x102
SDDL_REVISION_1 = 1
NO_CONSOLE_SESSION = 0xFFFFFFFF
BUFFER_SIZE = 64 * 1024

ERROR_FILE_NOT_FOUND = 2
ERROR_ACCESS_DENIED = 5
ERROR_BROKEN_PIPE = 109
ERROR_PIPE_BUSY = 231
ERROR_NO_DATA = 232
ERROR_PIPE_NOT_CONNECTED = 233
ERROR_PIPE_CONNECTED = 535
ERROR_OPERATION_ABORTED = 995
ERROR_IO_PENDING = 997
_END_OF_STREAM = frozenset({ERROR_BROKEN_PIPE, ERROR_NO_DATA, ERROR_PIPE_NOT_CONNECTED, ERROR_OPERATION_ABORTED})

# SYSTEM and Administrators: full control. Authenticated users: read/write data and attributes,
# synchronize, read control: FILE_GENERIC_READ|FILE_GENERIC_WRITE without FILE_APPEND_DATA, which on
# a pipe is FILE_CREATE_PIPE_INSTANCE: users can connect but cannot add a server instance.
USER_PIPE_ACCESS = 0x0012019B
PIPE_SDDL = f"D:P(A;;GA;;;SY)(A;;GA;;;BA)(A;;0x{USER_PIPE_ACCESS:08x};;;AU)"


@dataclass(frozen=True)
class _Api:
    win32pipe: ModuleType
    win32file: ModuleType
    win32security: ModuleType
    win32api: ModuleType
    win32event: ModuleType
    win32ts: ModuleType
    pywintypes: ModuleType


def _api() -> _Api:
    import pywintypes
    import win32api
    import win32event
    import win32file
    import win32pipe
    import win32security
    import win32ts

    return _Api(win32pipe, win32file, win32security, win32api, win32event, win32ts, pywintypes)


def _winerror(exc: BaseException) -> int | None:
    code = getattr(exc, "winerror", None)
    return code if isinstance(code, int) else None


def _token_sid(api: _Api, token: Any) -> str:
    sid, _attributes = api.win32security.GetTokenInformation(token, TOKEN_USER)
    return str(api.win32security.ConvertSidToStringSid(sid))


def own_sid(api: _Api) -> str:
    token = api.win32security.OpenProcessToken(api.win32api.GetCurrentProcess(), TOKEN_QUERY)
    return _token_sid(api, token)


def console_user_sid(api: _Api) -> str | None:
    """The SID of the user at the physical console, or None when nobody is logged on there."""
    session = api.win32ts.WTSGetActiveConsoleSessionId()
    if session == NO_CONSOLE_SESSION:
        return None
    try:
        # Needs SeTcbPrivilege, which the agent has as a LocalSystem service.
        token = api.win32ts.WTSQueryUserToken(session)
    except api.pywintypes.error as exc:
        log.debug("no user token for console session %s: %s", session, exc)
        return None
    return _token_sid(api, token)


class SidPolicy:
    """SYSTEM, the agent's own account, explicitly allowed SIDs, and the console user."""

    def __init__(self, api: _Api, allowed_sids: frozenset[str]) -> None:
        self._api = api
        self._fixed = frozenset({SYSTEM_SID, own_sid(api)}) | allowed_sids

    def allows(self, sid: str) -> bool:
        # The console user is looked up per connection: it changes when users switch.
        return sid in self._fixed or sid == console_user_sid(self._api)


class PipeStream:
    """One end of a connected pipe instance, with overlapped I/O so every wait has a timeout."""

    def __init__(self, api: _Api, handle: Any, *, server_side: bool) -> None:
        self._api = api
        self._handle = handle
        self._server_side = server_side
        self._event = api.win32event.CreateEvent(None, True, False, None)
        self._has_read = False
        self._closed = False

    def recv(self, max_bytes: int, timeout: float) -> bytes:
        api = self._api
        buffer = api.win32file.AllocateReadBuffer(max_bytes)
        overlapped = self._overlapped()
        try:
            api.win32file.ReadFile(self._handle, buffer, overlapped)
        except api.pywintypes.error as exc:
            if _winerror(exc) in _END_OF_STREAM:
                return b""
            raise
        count = self._finish(overlapped, timeout)
        self._has_read = self._has_read or count > 0
        return bytes(buffer[:count])

    def send_all(self, data: bytes, timeout: float) -> None:
        api = self._api
        overlapped = self._overlapped()
        try:
            api.win32file.WriteFile(self._handle, data, overlapped)
        except api.pywintypes.error as exc:
            if _winerror(exc) in _END_OF_STREAM:
                raise BrokenPipeError(f"local channel pipe closed by the peer ({exc})") from None
            raise
        if self._finish(overlapped, timeout) != len(data):
            raise BrokenPipeError("local channel pipe accepted a partial write")

    def peer(self) -> Peer | None:
        if self._server_side:
            # ImpersonateNamedPipeClient fails with ERROR_CANNOT_IMPERSONATE before the first read.
            return self._client_identity() if self._has_read else None
        pid = int(self._api.win32pipe.GetNamedPipeServerProcessId(self._handle))
        return Peer(pid=pid, session=int(self._api.win32ts.ProcessIdToSessionId(pid)))

    def _client_identity(self) -> Peer:
        api = self._api
        pid = int(api.win32pipe.GetNamedPipeClientProcessId(self._handle))
        api.win32pipe.ImpersonateNamedPipeClient(self._handle)
        try:
            token = api.win32security.OpenThreadToken(api.win32api.GetCurrentThread(), TOKEN_QUERY, True)
            sid = _token_sid(api, token)
        finally:
            # Never leave this thread running as the client, whatever happened above.
            api.win32security.RevertToSelf()
        return Peer(pid=pid, sid=sid, session=int(api.win32ts.ProcessIdToSessionId(pid)))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # No FlushFileBuffers/DisconnectNamedPipe: flushing blocks until the client reads (a stuck
        # client would pin this thread) and disconnecting discards unread data. Closing the last
        # server handle leaves buffered bytes readable, then the client sees ERROR_BROKEN_PIPE.
        self._api.win32file.CloseHandle(self._handle)
        self._api.win32file.CloseHandle(self._event)

    def _overlapped(self) -> Any:
        overlapped = self._api.pywintypes.OVERLAPPED()
        self._api.win32event.ResetEvent(self._event)
        overlapped.hEvent = self._event
        return overlapped

    def _finish(self, overlapped: Any, timeout: float) -> int:
        """Bytes moved by an overlapped call; raises TimeoutError after cancelling it."""
        api = self._api
        waited = api.win32event.WaitForSingleObject(self._event, _millis(timeout))
        try:
            if waited == WAIT_TIMEOUT:
                api.win32file.CancelIo(self._handle)
                # The I/O may have completed between the wait and the cancel: keep its bytes.
                count = int(api.win32file.GetOverlappedResult(self._handle, overlapped, True))
                if count == 0:
                    raise TimeoutError(f"no data on the local channel pipe within {timeout:g} s")
                return count
            return int(api.win32file.GetOverlappedResult(self._handle, overlapped, False))
        except api.pywintypes.error as exc:
            code = _winerror(exc)
            if code == ERROR_OPERATION_ABORTED:
                raise TimeoutError(f"no data on the local channel pipe within {timeout:g} s") from None
            if code in _END_OF_STREAM:
                return 0
            raise


class PipeListener:
    def __init__(self, api: _Api, name: str, policy: SidPolicy) -> None:
        self._api = api
        self.name = name
        self._policy = policy
        self._security = self._security_attributes()
        self._first = True
        self._pending: tuple[Any, Any, Any] | None = None  # handle, overlapped, event
        self._pending = self._new_instance()

    def _security_attributes(self) -> Any:
        security = self._api.win32security
        attributes = security.SECURITY_ATTRIBUTES()
        attributes.SECURITY_DESCRIPTOR = security.ConvertStringSecurityDescriptorToSecurityDescriptor(
            PIPE_SDDL, SDDL_REVISION_1
        )
        attributes.bInheritHandle = False
        return attributes

    def _new_instance(self) -> tuple[Any, Any, Any]:
        api = self._api
        open_mode = PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED
        if self._first:
            open_mode |= FILE_FLAG_FIRST_PIPE_INSTANCE
        pipe_mode = PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS
        try:
            handle = api.win32pipe.CreateNamedPipe(
                self.name, open_mode, pipe_mode, PIPE_UNLIMITED_INSTANCES,
                BUFFER_SIZE, BUFFER_SIZE, 0, self._security,
            )
        except api.pywintypes.error as exc:
            if self._first and _winerror(exc) == ERROR_ACCESS_DENIED:
                raise PermissionError(
                    f"named pipe {self.name} already exists: another process (possibly posing as the "
                    f"agent) owns it; refusing to serve next to it"
                ) from None
            raise
        self._first = False
        event = api.win32event.CreateEvent(None, True, False, None)
        overlapped = api.pywintypes.OVERLAPPED()
        overlapped.hEvent = event
        result = api.win32pipe.ConnectNamedPipe(handle, overlapped)
        if result == ERROR_PIPE_CONNECTED:
            api.win32event.SetEvent(event)  # a client connected between create and connect
        return handle, overlapped, event

    def accept(self, timeout: float) -> PipeStream | None:
        api = self._api
        if self._pending is None:
            self._pending = self._new_instance()
        handle, overlapped, event = self._pending
        if api.win32event.WaitForSingleObject(event, _millis(timeout)) == WAIT_TIMEOUT:
            return None
        self._pending = None
        api.win32file.CloseHandle(event)
        self._listen_again()
        try:
            api.win32file.GetOverlappedResult(handle, overlapped, False)
        except api.pywintypes.error as exc:
            if _winerror(exc) != ERROR_PIPE_CONNECTED:
                log.debug("pipe client left before it was accepted: %s", exc)
                api.win32file.CloseHandle(handle)
                return None
        return PipeStream(api, handle, server_side=True)

    def _listen_again(self) -> None:
        """Put up the next instance at once: while none is listening, a client's CreateFile fails
        with ERROR_FILE_NOT_FOUND (once this connection ends) as if the agent were not running."""
        try:
            self._pending = self._new_instance()
        except self._api.pywintypes.error:
            log.exception("could not create the next instance of %s; retrying on the next accept", self.name)

    def authorize(self, peer: Peer) -> bool:
        return peer.sid is not None and self._policy.allows(peer.sid)

    def close(self) -> None:
        if self._pending is None:
            return
        handle, _overlapped, event = self._pending
        self._pending = None
        with contextlib.suppress(self._api.pywintypes.error):
            self._api.win32file.CancelIo(handle)
        self._api.win32file.CloseHandle(handle)
        self._api.win32file.CloseHandle(event)


class WindowsPipeTransport:
    def __init__(self, *, allowed_sids: frozenset[str] = frozenset(), require_service_server: bool = True) -> None:
        self._allowed_sids = allowed_sids
        # A dev build may run the agent in a user session; production agents are services.
        self._require_service_server = require_service_server

    def listen(self, address: str, allowed_uids: set[int] | None) -> PipeListener:
        if allowed_uids:
            log.warning("allowed_uids %s ignored on Windows: peers are checked by SID", sorted(allowed_uids))
        api = _api()
        return PipeListener(api, address, SidPolicy(api, self._allowed_sids))

    def connect(self, address: str, timeout: float) -> PipeStream:
        api = _api()
        handle = _open_pipe(api, address, timeout)
        stream = PipeStream(api, handle, server_side=False)
        if self._require_service_server:
            server = stream.peer()
            if server is None or server.session != 0:
                stream.close()
                where = f"pid {server.pid} in session {server.session}" if server else "an unknown process"
                raise UntrustedServer(f"{address} is served by {where}, not by a service; refusing to talk to it")
        return stream


def _open_pipe(api: _Api, address: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return api.win32file.CreateFile(
                address, GENERIC_READ | GENERIC_WRITE, 0, None, OPEN_EXISTING, FILE_FLAG_OVERLAPPED, None
            )
        except api.pywintypes.error as exc:
            code = _winerror(exc)
            if code == ERROR_FILE_NOT_FOUND:
                raise TransportUnavailable(f"nothing is listening at {address}") from None
            if code == ERROR_ACCESS_DENIED:
                raise TransportUnavailable(f"no permission to open {address}") from None
            if code != ERROR_PIPE_BUSY:
                raise TransportUnavailable(f"cannot open {address}: {exc}") from None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TransportUnavailable(f"{address} stayed busy for {timeout:g} s")
        # Raises when it times out or the pipe vanishes: the next CreateFile says which.
        with contextlib.suppress(api.pywintypes.error):
            api.win32pipe.WaitNamedPipe(address, _millis(remaining))


def _millis(seconds: float) -> int:
    return max(0, int(seconds * 1000))
