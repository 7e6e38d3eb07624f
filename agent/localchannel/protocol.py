"""The local channel's wire format: one JSON object per line, in both directions.

Request:  ``{"id": 7, "op": "status", ...args}``
Response: ``{"id": 7, "ok": true, "result": {...}}`` or
          ``{"id": 7, "ok": false, "error": "<code>", "detail": "..."}``

Everything here is pure (bytes in, dicts out) so the server, the client and the tests share one
definition of what a valid message is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# A request is a handful of short fields; anything bigger is a bug or an attack, and a cap keeps a
# local client from making the agent buffer without bound.
MAX_REQUEST_BYTES = 64 * 1024
# Responses come from the agent (alert lists, policy text); the client still bounds what it reads.
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
MAX_OP_LENGTH = 64

# Error codes the channel itself produces; handlers add their own (see ops.py).
ERR_BAD_REQUEST = "bad_request"
ERR_TOO_LARGE = "too_large"
ERR_UNKNOWN_OP = "unknown_op"
ERR_INTERNAL = "internal"
ERR_FORBIDDEN = "forbidden"
ERR_BUSY = "busy"
ERR_TIMEOUT = "timeout"

RESERVED_KEYS = frozenset({"id", "op"})


class ChannelError(Exception):
    """Raised by a handler (or the channel) to answer with a specific error code.

    ``detail`` goes to the local client, so it must never carry customer data.
    """

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Request:
    id: int
    op: str
    args: dict[str, Any]


def parse_request(line: bytes) -> Request:
    """Decode one request line; raises ChannelError(bad_request) saying what is wrong."""
    try:
        data = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ChannelError(ERR_BAD_REQUEST, f"request is not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ChannelError(ERR_BAD_REQUEST, f"request is not valid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise ChannelError(ERR_BAD_REQUEST, "request is nested too deeply") from None
    if not isinstance(data, dict):
        raise ChannelError(ERR_BAD_REQUEST, f"request must be a JSON object, got {type(data).__name__}")
    request_id = data.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, int):
        raise ChannelError(ERR_BAD_REQUEST, f"field 'id': expected an integer, got {request_id!r:.40}")
    op = data.get("op")
    if not isinstance(op, str) or not op or len(op) > MAX_OP_LENGTH:
        raise ChannelError(ERR_BAD_REQUEST, f"field 'op': expected a non-empty string, got {op!r:.40}")
    args = {key: value for key, value in data.items() if key not in RESERVED_KEYS}
    return Request(id=request_id, op=op, args=args)


def request_id_of(line: bytes) -> int | None:
    """Best-effort id of a rejected line, so the client can match the error to its call."""
    try:
        data = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    request_id = data.get("id") if isinstance(data, dict) else None
    return request_id if isinstance(request_id, int) and not isinstance(request_id, bool) else None


def encode_request(request_id: int, op: str, args: dict[str, Any]) -> bytes:
    clash = RESERVED_KEYS & args.keys()
    if clash:
        raise ValueError(f"argument names {sorted(clash)} are reserved by the local channel protocol")
    return _line({"id": request_id, "op": op, **args})


def ok_response(request_id: int | None, result: dict[str, Any]) -> bytes:
    return _line({"id": request_id, "ok": True, "result": result})


def error_response(request_id: int | None, code: str, detail: str = "") -> bytes:
    return _line({"id": request_id, "ok": False, "error": code, "detail": detail})


def parse_response(line: bytes) -> dict[str, Any]:
    """Decode one response line; raises ValueError saying what is wrong."""
    try:
        data = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"response is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("ok"), bool):
        raise ValueError("response must be a JSON object with a boolean 'ok'")
    if data["ok"] and not isinstance(data.get("result"), dict):
        raise ValueError("response 'result' must be a JSON object")
    if not data["ok"] and not isinstance(data.get("error"), str):
        raise ValueError("error response must carry a string 'error' code")
    return data


def _line(message: dict[str, Any]) -> bytes:
    # ensure_ascii=False keeps Chinese policy text readable on the wire; json never emits a raw
    # newline inside a string, so one object is always exactly one line.
    return (json.dumps(message, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


class LineBuffer:
    """Splits a byte stream into lines, refusing any line longer than ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._data = bytearray()

    def feed(self, chunk: bytes) -> None:
        self._data += chunk

    def next_line(self) -> bytes | None:
        """The next complete line without its newline, or None; raises ChannelError(too_large)."""
        end = self._data.find(b"\n")
        if end < 0:
            if len(self._data) > self._limit:
                raise ChannelError(ERR_TOO_LARGE, f"request exceeds {self._limit} bytes without a newline")
            return None
        if end > self._limit:
            raise ChannelError(ERR_TOO_LARGE, f"request of {end} bytes exceeds the {self._limit}-byte limit")
        line = bytes(self._data[:end])
        del self._data[: end + 1]
        return line.rstrip(b"\r")

    @property
    def pending(self) -> int:
        return len(self._data)
