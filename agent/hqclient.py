"""Signed HTTPS requests to HQ, and what each kind of answer means for the caller.

Every answer is sorted into one of a few outcomes the uplink acts on: success, HQ away
(back off), throttled (honour Retry-After), too large (halve the batch), rejected (revoked or
unknown device: stop sending), or a malformed answer (treated like HQ away, never trusted).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from urllib3.exceptions import HTTPError as Urllib3Error

from agent import __version__
from agent.signing import b64url, enrollment_message, public_key_text, sign_request

MAX_ANSWER_BYTES = 8 * 1024 * 1024
RETRY_AFTER_CAP_S = 600.0


class HqError(RuntimeError):
    """Base of every HQ outcome other than success."""


class HqUnavailable(HqError):
    """Unreachable, timed out, TLS failure, 5xx: try again later."""


class HqBadAnswer(HqError):
    """HQ answered something that is not what the protocol says."""


class HqThrottled(HqError):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"HQ asked to wait {retry_after_s:.0f} s (429)")
        self.retry_after_s = retry_after_s


class HqTooLarge(HqError):
    """413: the request body is over HQ's limit."""


class HqRejected(HqError):
    """4xx with an error code: the request was refused as such."""

    def __init__(self, status: int, code: str, detail: str, server_time: float | None = None) -> None:
        super().__init__(f"HQ refused the request ({status} {code}): {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.server_time = server_time


def parse_retry_after(value: str | None, *, now: float) -> float:
    """Retry-After in seconds or an HTTP date; a missing or odd value means one minute."""
    if not value:
        return 60.0
    value = value.strip()
    # isascii too: "²".isdigit() is True, and header values arrive decoded as latin-1.
    if value.isascii() and value.isdigit():
        return min(float(value), RETRY_AFTER_CAP_S)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return 60.0
    return min(max(0.0, when - now), RETRY_AFTER_CAP_S)


def _require_pin(url: str, ca_file: str | None) -> str | bool:
    """HTTPS always verifies against the pinned HQ CA only; plain HTTP only on loopback."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        if not ca_file:
            raise HqError(f"{url}: HTTPS to HQ needs the HQ CA to pin (--ca FILE or [hq] ca_file)")
        return ca_file
    if parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost", "::1"}:
        return True
    raise HqError(f"{url}: HQ URL must be https:// (plain http only on loopback)")


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: dict[str, str]
    content: bytes


def _decode(response: _Answer) -> dict[str, Any]:
    try:
        data = json.loads(response.content)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than the parser goes
        raise HqBadAnswer(f"HQ answered {response.status} with non-JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise HqBadAnswer(f"HQ answered {response.status} with JSON that is not an object")
    return data


def _raise_for_answer(response: _Answer, *, now: float) -> dict[str, Any]:
    status = response.status
    if status == 429:
        raise HqThrottled(parse_retry_after(response.headers.get("Retry-After"), now=now))
    if status == 413:
        raise HqTooLarge("HQ refused the body as too large (413)")
    if status >= 500:
        raise HqUnavailable(f"HQ answered {status}")
    data = _decode(response)
    if status >= 400:
        server_time = data.get("server_time")
        raise HqRejected(
            status,
            str(data.get("error", "unknown"))[:64],
            str(data.get("detail", ""))[:500],
            float(server_time) if isinstance(server_time, int | float) else None,
        )
    if status != 200:
        raise HqBadAnswer(f"HQ answered unexpected status {status}")
    return data


def _pool(verify: str | bool, timeout_s: float) -> urllib3.PoolManager:
    """Connections to HQ: the pinned CA only (never the system store), no automatic retries."""
    timeout = urllib3.Timeout(connect=timeout_s, read=timeout_s)
    if isinstance(verify, str):
        return urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=verify, timeout=timeout, retries=False,
                                   maxsize=2)
    return urllib3.PoolManager(timeout=timeout, retries=False, maxsize=2)


def _send(pool: urllib3.PoolManager, method: str, url: str, *, body: bytes,
          headers: dict[str, str]) -> _Answer:
    try:
        response = pool.request(method, url, body=body or None, headers=headers, preload_content=False,
                                redirect=False)
        try:
            # Read one byte past the limit so an oversized answer is recognised without holding it all.
            content = response.read(MAX_ANSWER_BYTES + 1)
        finally:
            response.release_conn()
    except (TimeoutError, OSError, Urllib3Error) as exc:
        raise HqUnavailable(f"HQ unreachable: {type(exc).__name__}: {exc}") from exc
    if len(content) > MAX_ANSWER_BYTES:
        raise HqBadAnswer(f"HQ answer is over the {MAX_ANSWER_BYTES} byte limit")
    return _Answer(response.status, dict(response.headers), content)


@dataclass(frozen=True)
class EnrollAnswer:
    device_id: str
    outlet_id: str
    policy_public_key: str
    server_time: float


def enroll(url: str, *, token: str, key: Ed25519PrivateKey, ca_file: str | None, timeout_s: float,
           hostname: str, os_name: str) -> EnrollAnswer:
    verify = _require_pin(url, ca_file)
    public_key = public_key_text(key)
    body = {
        "token": token,
        "public_key": public_key,
        "proof": b64url(key.sign(enrollment_message(token, public_key))),
        "hostname": hostname,
        "os": os_name,
        "agent_version": __version__,
    }
    with _pool(verify, timeout_s) as pool:
        response = _send(pool, "POST", url.rstrip("/") + "/v1/enroll", body=json.dumps(body).encode("utf-8"),
                         headers={"Content-Type": "application/json"})
    data = _raise_for_answer(response, now=time.time())
    try:
        return EnrollAnswer(
            device_id=str(data["device_id"]),
            outlet_id=str(data["outlet_id"]),
            policy_public_key=str(data["policy_public_key"]),
            server_time=float(data["server_time"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise HqBadAnswer(f"enrollment answer lacks a field: {exc}") from exc


class HqClient:
    """One device's signed channel to HQ. Requests are serialised so sequence numbers arrive in order."""

    def __init__(self, url: str, *, device_id: str, key: Ed25519PrivateKey, ca_file: str | None,
                 next_seq: Callable[[], int], skip_seq: Callable[[], None] = lambda: None,
                 timeout_s: float = 10.0) -> None:
        self._base = url.rstrip("/")
        self._verify = _require_pin(url, ca_file)
        self._device_id = device_id
        self._key = key
        self._next_seq = next_seq
        self._skip_seq = skip_seq
        self.device_id = device_id
        self._pool = _pool(self._verify, timeout_s)
        self._lock = threading.Lock()
        self.clock_offset_s = 0.0

    def close(self) -> None:
        self._pool.clear()

    def request(self, method: str, path: str, payload: Any | None = None) -> dict[str, Any]:
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode("utf-8")
        with self._lock:
            try:
                return self._signed(method, path, body)
            except HqRejected as exc:
                if exc.code == "stale_timestamp" and exc.server_time is not None:
                    # The refusal carries HQ's clock: adopt the offset and try once more.
                    self.clock_offset_s = exc.server_time - time.time()
                elif exc.code == "replayed":
                    self._skip_seq()  # another process of this device used higher numbers
                else:
                    raise
                return self._signed(method, path, body)

    def _signed(self, method: str, path: str, body: bytes) -> dict[str, Any]:
        timestamp = int(time.time() + self.clock_offset_s)
        headers = sign_request(self._key, method=method, path=path, body=body, device_id=self._device_id,
                               seq=self._next_seq(), timestamp=timestamp)
        headers["Content-Type"] = "application/json"
        sent = time.time()
        response = _send(self._pool, method, self._base + path, body=body, headers=headers)
        data = _raise_for_answer(response, now=time.time())
        self._learn_offset(data, sent, time.time())
        return data

    def _learn_offset(self, data: dict[str, Any], sent: float, received: float) -> None:
        server_time = data.get("server_time")
        if isinstance(server_time, int | float) and not isinstance(server_time, bool):
            self.clock_offset_s = float(server_time) - (sent + received) / 2
