"""The agent end of the local channel: authenticated peers, one JSON request per line, handlers.

A named accept thread hands each connection to its own named thread (bounded). Before any
request is read, the OS says who the peer is and the transport decides whether that user may
talk to the agent; a refused peer gets one ``forbidden`` line and is logged. Handlers run on
connection threads, concurrently: they must be thread-safe. Request arguments are never logged,
since ``signin`` carries a password.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from agent.localchannel.address import default_address
from agent.localchannel.protocol import (
    ERR_BUSY,
    ERR_FORBIDDEN,
    ERR_INTERNAL,
    ERR_UNKNOWN_OP,
    MAX_REQUEST_BYTES,
    ChannelError,
    LineBuffer,
    error_response,
    ok_response,
    parse_request,
    request_id_of,
)
from agent.localchannel.transport import Listener, Peer, Stream, Transport, transport_for

__all__ = ["Handler", "LocalChannelServer", "default_address"]

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], dict[str, Any]]

MAX_CONNECTIONS = 16
POLL_S = 0.25  # how often blocked accept/recv calls look at the stop flag
RECV_CHUNK = 16 * 1024
SEND_TIMEOUT_S = 5.0
IDLE_TIMEOUT_S = 60.0
# A peer that the OS cannot identify until it writes (Windows) gets little time to do so, so
# strangers cannot hold connection slots open.
IDENTIFY_TIMEOUT_S = 5.0


class LocalChannelServer:
    def __init__(self, address: str, handlers: Mapping[str, Handler], *,
                 allowed_uids: set[int] | None = None, transport: Transport | None = None) -> None:
        self.address = address
        self._handlers = dict(handlers)
        self._allowed_uids = set(allowed_uids) if allowed_uids is not None else None
        self._transport = transport or transport_for(address)
        self._stop = threading.Event()
        self._listener: Listener | None = None
        self._accept_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._connection_threads: set[threading.Thread] = set()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._numbers = itertools.count(1)
        self.refused_connections = 0
        self.requests_served = 0

    def start(self) -> None:
        """Bind the address (errors surface here, in the caller) and start accepting."""
        if self._accept_thread is not None:
            raise RuntimeError("local channel server already started")
        self._listener = self._transport.listen(self.address, self._allowed_uids)
        self._accept_thread = threading.Thread(target=self._accept_loop, name="tg-localchannel", daemon=True)
        self._accept_thread.start()
        log.info("local channel listening on %s", self.address)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, let open connections notice (within POLL_S) and wait for them."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        threads = [self._accept_thread] if self._accept_thread else []
        with self._lock:
            threads += list(self._connection_threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [thread.name for thread in threads if thread.is_alive()]
        if alive:
            log.warning("local channel threads still running after %.1f s: %s", timeout, ", ".join(alive))

    # --- accepting ---------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        try:
            while not self._stop.is_set():
                try:
                    stream = listener.accept(POLL_S)
                except Exception:
                    log.exception("local channel accept failed on %s", self.address)
                    self._stop.wait(1.0)
                    continue
                if stream is not None:
                    self._dispatch(stream)
        finally:
            listener.close()

    def _dispatch(self, stream: Stream) -> None:
        if not self._slots.acquire(blocking=False):
            log.warning("local channel refused a connection: %d connections already open", MAX_CONNECTIONS)
            self._send(stream, error_response(None, ERR_BUSY, "too many open connections to the agent"))
            stream.close()
            return
        thread = threading.Thread(target=self._serve, args=(stream,), daemon=True,
                                  name=f"tg-localchannel-conn-{next(self._numbers)}")
        with self._lock:
            self._connection_threads.add(thread)
        thread.start()

    def _serve(self, stream: Stream) -> None:
        try:
            self._session(stream)
        except Exception:
            log.exception("local channel connection failed")
        finally:
            stream.close()
            self._slots.release()
            with self._lock:
                self._connection_threads.discard(threading.current_thread())

    # --- one connection ----------------------------------------------------------------------

    def _session(self, stream: Stream) -> None:
        peer = stream.peer()
        if peer is not None and not self._admit(stream, peer):
            return
        buffer = LineBuffer(MAX_REQUEST_BYTES)
        deadline = time.monotonic() + (IDLE_TIMEOUT_S if peer else IDENTIFY_TIMEOUT_S)
        while not self._stop.is_set():
            try:
                chunk = stream.recv(RECV_CHUNK, POLL_S)
            except TimeoutError:
                if time.monotonic() > deadline:
                    return
                continue
            if not chunk:
                return
            if peer is None:
                peer = stream.peer()
                if peer is None or not self._admit(stream, peer):
                    return
            deadline = time.monotonic() + IDLE_TIMEOUT_S
            buffer.feed(chunk)
            if not self._answer_lines(stream, buffer):
                return

    def _admit(self, stream: Stream, peer: Peer) -> bool:
        assert self._listener is not None
        if self._listener.authorize(peer):
            return True
        with self._lock:
            self.refused_connections += 1
        log.warning("local channel refused %s: neither root/SYSTEM nor the allowed console user", peer.describe())
        self._send(stream, error_response(None, ERR_FORBIDDEN, "this OS user may not use the Terminal Guard agent"))
        return False

    def _answer_lines(self, stream: Stream, buffer: LineBuffer) -> bool:
        """Answer every complete line; False when the connection must end."""
        while True:
            try:
                line = buffer.next_line()
            except ChannelError as exc:
                # The stream cannot be resynchronised after an oversize line: answer and hang up.
                log.warning("local channel request refused: %s", exc.detail)
                self._send(stream, error_response(None, exc.code, exc.detail))
                return False
            if line is None:
                return True
            if line.strip() and not self._send(stream, self._answer(line)):
                return False

    def _answer(self, line: bytes) -> bytes:
        try:
            request = parse_request(line)
        except ChannelError as exc:
            return error_response(request_id_of(line), exc.code, exc.detail)
        handler = self._handlers.get(request.op)
        if handler is None:
            known = ", ".join(sorted(self._handlers))
            return error_response(request.id, ERR_UNKNOWN_OP, f"unknown op {request.op!r}; known ops: {known}")
        try:
            result = handler(request.args)
            if not isinstance(result, dict):
                raise TypeError(f"handler returned {type(result).__name__}, not a dict")
            response = ok_response(request.id, result)
        except ChannelError as exc:
            return error_response(request.id, exc.code, exc.detail)
        except Exception:
            log.exception("local channel handler for %r failed", request.op)
            return error_response(request.id, ERR_INTERNAL, f"the agent failed to handle {request.op!r}; see its log")
        with self._lock:
            self.requests_served += 1
        return response

    def _send(self, stream: Stream, data: bytes) -> bool:
        try:
            stream.send_all(data, SEND_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            log.debug("local channel client went away: %s", exc)
            return False
        return True

