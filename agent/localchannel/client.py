"""The client end of the local channel (Qt-free): used by the tray and by CLI commands.

One connection per call: calls are rare (a status poll every few seconds, a click now and then),
and a fresh connection means a call that failed half-way can never be confused with the next one
or silently retried (``answer_alert`` must not be sent twice).
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from agent.localchannel.protocol import (
    MAX_RESPONSE_BYTES,
    ChannelError,
    LineBuffer,
    encode_request,
    parse_response,
)
from agent.localchannel.transport import Stream, Transport, TransportUnavailable, UntrustedServer, transport_for

ERR_PROTOCOL = "protocol"
ERR_UNTRUSTED_SERVER = "untrusted_server"

REASON_NOT_RUNNING = "not_running"
REASON_TIMEOUT = "timeout"
REASON_DISCONNECTED = "disconnected"


class AgentUnavailable(Exception):
    """The agent cannot be reached: not running, not answering in time, or gone mid-call."""

    def __init__(self, message: str, reason: str = REASON_NOT_RUNNING) -> None:
        super().__init__(message)
        self.reason = reason


class AgentError(Exception):
    """The agent answered with an error code (see protocol.py and ops.py for the codes)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


class AgentClient:
    _ids = itertools.count(1)

    def __init__(self, address: str, *, timeout_s: float = 3.0, transport: Transport | None = None) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self._transport = transport or transport_for(address)

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        """Send one request and return its result; raises AgentUnavailable or AgentError."""
        request_id = next(self._ids)
        request = encode_request(request_id, op, args)
        deadline = time.monotonic() + self.timeout_s
        stream = self._connect()
        try:
            line = self._exchange(stream, request, deadline, op)
        finally:
            stream.close()
        try:
            response = parse_response(line)
        except ValueError as exc:
            raise AgentError(ERR_PROTOCOL, str(exc)) from None
        if response.get("id") not in (request_id, None):
            raise AgentError(ERR_PROTOCOL, f"response id {response.get('id')!r} does not match request {request_id}")
        if not response["ok"]:
            raise AgentError(response["error"], str(response.get("detail") or ""))
        result: dict[str, Any] = response["result"]
        return result

    def _connect(self) -> Stream:
        try:
            return self._transport.connect(self.address, self.timeout_s)
        except TransportUnavailable as exc:
            raise AgentUnavailable(f"the Terminal Guard agent is not reachable: {exc}") from None
        except UntrustedServer as exc:
            raise AgentError(ERR_UNTRUSTED_SERVER, str(exc)) from None

    def _exchange(self, stream: Stream, request: bytes, deadline: float, op: str) -> bytes:
        try:
            stream.send_all(request, self.timeout_s)
        except TimeoutError:
            raise AgentUnavailable(f"the agent did not take the {op!r} request within {self.timeout_s:g} s",
                                   REASON_TIMEOUT) from None
        except OSError:
            pass  # the agent may have hung up after answering (e.g. "forbidden"): read that answer
        return self._read_line(stream, deadline, op)

    def _read_line(self, stream: Stream, deadline: float, op: str) -> bytes:
        buffer = LineBuffer(MAX_RESPONSE_BYTES)
        while True:
            try:
                line = buffer.next_line()
            except ChannelError:
                raise AgentError(ERR_PROTOCOL, f"response exceeds {MAX_RESPONSE_BYTES} bytes") from None
            if line is not None:
                return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AgentUnavailable(f"the agent did not answer {op!r} within {self.timeout_s:g} s", REASON_TIMEOUT)
            try:
                chunk = stream.recv(64 * 1024, remaining)
            except TimeoutError:
                continue
            except OSError as exc:
                raise AgentUnavailable(f"the connection to the agent broke: {exc}", REASON_DISCONNECTED) from None
            if not chunk:
                raise AgentUnavailable("the agent closed the connection without answering", REASON_DISCONNECTED)
            buffer.feed(chunk)
