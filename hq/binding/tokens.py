"""Bound session tokens: a JWT (HS256) that only HQ issues and only HQ checks.

    header  {"alg": "HS256", "typ": "tg-session+jwt"}
    payload {"sid", "sub" (staff), "dev" (device), "out" (outlet), "iat", "exp", "cnf": {"jkt"}, "ack"}

A MAC rather than a signature: the gateway never checks a token itself, it asks HQ, so no one
else needs a public key, and an HMAC costs microseconds on the verify hot path. ``cnf.jkt`` is
the RFC 7638 thumbprint of the device key the session is bound to; ``ack`` says whether the staff
member had acknowledged the policy in force when the token was issued.

Parsing is for hostile input: bounded length, exact shape, types checked, the MAC compared in
constant time before the payload is trusted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass

from agent.signing import b64url

TOKEN_TYP = "tg-session+jwt"  # noqa: S105 - a type name, not a secret
MAX_TOKEN_CHARS = 2048
_HEADER = b64url(json.dumps({"alg": "HS256", "typ": TOKEN_TYP}, separators=(",", ":"), sort_keys=True).encode())
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

MALFORMED = "malformed_token"
BAD_MAC = "bad_token"


class TokenError(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class SessionClaims:
    sid: str
    staff: str
    device: str
    outlet: str
    iat: int
    exp: int
    jkt: str
    ack: bool

    def payload(self) -> dict[str, object]:
        return {"sid": self.sid, "sub": self.staff, "dev": self.device, "out": self.outlet, "iat": self.iat,
                "exp": self.exp, "cnf": {"jkt": self.jkt}, "ack": self.ack}


def _mac(key: bytes, signing_input: bytes) -> bytes:
    return hmac.new(key, signing_input, hashlib.sha256).digest()


def issue_token(key: bytes, claims: SessionClaims) -> str:
    payload = b64url(json.dumps(claims.payload(), separators=(",", ":"), sort_keys=True).encode("utf-8"))
    signing_input = f"{_HEADER}.{payload}"
    return f"{signing_input}.{b64url(_mac(key, signing_input.encode('ascii')))}"


def _b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _text(payload: dict[str, object], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not _ID.match(value):
        raise TokenError(MALFORMED, f"payload: {name} missing or not an id")
    return value


def _int(payload: dict[str, object], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**40:
        raise TokenError(MALFORMED, f"payload: {name} missing or not a unix time")
    return value


def parse_token(key: bytes, token: str) -> SessionClaims:
    """The claims of a token HQ issued with ``key``; TokenError(malformed_token | bad_token) otherwise.

    Expiry is not judged here (the caller knows the time and the reason to give)."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
        raise TokenError(MALFORMED, f"expected 1 to {MAX_TOKEN_CHARS} characters")
    parts = token.split(".")
    if len(parts) != 3 or not all(_B64URL.match(part) for part in parts):
        raise TokenError(MALFORMED, "expected three base64url segments separated by dots")
    if parts[0] != _HEADER:
        raise TokenError(MALFORMED, f'header: expected alg HS256 and typ "{TOKEN_TYP}"')
    try:
        mac = _b64decode(parts[2])
    except ValueError:
        raise TokenError(MALFORMED, "mac: not base64url") from None
    if not hmac.compare_digest(mac, _mac(key, f"{parts[0]}.{parts[1]}".encode("ascii"))):
        raise TokenError(BAD_MAC, "not issued by this HQ (or altered)")
    # From here the payload is HQ's own; the checks below guard against a leaked or rotated key.
    try:
        payload = json.loads(_b64decode(parts[1]))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise TokenError(MALFORMED, "payload: not base64url JSON") from None
    if not isinstance(payload, dict):
        raise TokenError(MALFORMED, "payload: expected a JSON object")
    cnf = payload.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if not isinstance(jkt, str) or not _B64URL.match(jkt) or len(jkt) != 43:
        raise TokenError(MALFORMED, "payload: cnf.jkt missing or not a SHA-256 thumbprint")
    ack = payload.get("ack")
    if not isinstance(ack, bool):
        raise TokenError(MALFORMED, "payload: ack missing or not a boolean")
    return SessionClaims(sid=_text(payload, "sid"), staff=_text(payload, "sub"), device=_text(payload, "dev"),
                         outlet=_text(payload, "out"), iat=_int(payload, "iat"), exp=_int(payload, "exp"),
                         jkt=jkt, ack=ack)
