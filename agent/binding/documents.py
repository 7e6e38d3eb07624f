"""The two documents a device signs for session binding, shared by the agent (signer) and HQ.

    binding          {"typ": "tg-bind/1", "staff", "device", "outlet", "challenge", "iat"[, "sid"]}
    acknowledgement  {"typ": "tg-ack/1", "staff", "device", "outlet", "policy_hash", "policy_version",
                      "acknowledged_at"}

Each travels as {"document": {...}, "signature": b64url(Ed25519 over canonical JSON)}. The
``typ`` keeps one kind of signed document from ever being accepted as the other. HQ checks them
only with the key it stored at enrollment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agent.signing import SignatureError, b64url, b64url_decode, canonical_json

BIND_TYP = "tg-bind/1"
ACK_TYP = "tg-ack/1"
MAX_ID_CHARS = 64


class DocumentError(ValueError):
    """A signed document that is malformed, for another device or staff, or badly signed."""


def signed(key: Ed25519PrivateKey, document: dict[str, Any]) -> dict[str, Any]:
    return {"document": document, "signature": b64url(key.sign(canonical_json(document)))}


def binding_document(*, staff: str, device: str, outlet: str, challenge: str, iat: int,
                     sid: str | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {"typ": BIND_TYP, "staff": staff, "device": device, "outlet": outlet,
                                "challenge": challenge, "iat": iat}
    if sid is not None:
        document["sid"] = sid
    return document


def ack_document(*, staff: str, device: str, outlet: str, policy_hash: str, policy_version: int | None,
                 acknowledged_at: float) -> dict[str, Any]:
    return {"typ": ACK_TYP, "staff": staff, "device": device, "outlet": outlet, "policy_hash": policy_hash,
            "policy_version": policy_version, "acknowledged_at": acknowledged_at}


def _verified(public_key: Ed25519PublicKey, envelope: Any, typ: str) -> dict[str, Any]:
    if not isinstance(envelope, dict) or not isinstance(envelope.get("document"), dict):
        raise DocumentError(f"{typ}: expected {{document, signature}}")
    document, signature = envelope["document"], envelope.get("signature")
    if document.get("typ") != typ:
        raise DocumentError(f"{typ}: document.typ is not {typ!r}")
    if not isinstance(signature, str) or len(signature) > 128:
        raise DocumentError(f"{typ}: signature missing")
    try:
        public_key.verify(b64url_decode(signature), canonical_json(document))
    except (InvalidSignature, SignatureError):
        raise DocumentError(f"{typ}: signature does not verify with the enrolled device key") from None
    return document


def _expect(document: dict[str, Any], name: str, value: Any, typ: str) -> None:
    if document.get(name) != value:
        raise DocumentError(f"{typ}: document.{name} does not match this request")


@dataclass(frozen=True)
class BindingClaims:
    challenge: str
    iat: int
    sid: str | None


def check_binding(public_key: Ed25519PublicKey, envelope: Any, *, staff: str, device: str,
                  outlet: str) -> BindingClaims:
    """The binding's challenge and time once the signature and the named parties check out."""
    document = _verified(public_key, envelope, BIND_TYP)
    for name, value in (("staff", staff), ("device", device), ("outlet", outlet)):
        _expect(document, name, value, BIND_TYP)
    challenge, iat, sid = document.get("challenge"), document.get("iat"), document.get("sid")
    if not isinstance(challenge, str) or isinstance(iat, bool) or not isinstance(iat, int):
        raise DocumentError(f"{BIND_TYP}: challenge (string) and iat (integer) are required")
    if sid is not None and not isinstance(sid, str):
        raise DocumentError(f"{BIND_TYP}: sid must be a string")
    return BindingClaims(challenge=challenge, iat=iat, sid=sid)


@dataclass(frozen=True)
class AckClaims:
    staff: str
    policy_hash: str
    policy_version: int | None
    acknowledged_at: float
    document: dict[str, Any]
    signature: str


def check_ack(public_key: Ed25519PublicKey, envelope: Any, *, device: str, outlet: str,
              staff: str | None = None) -> AckClaims:
    document = _verified(public_key, envelope, ACK_TYP)
    _expect(document, "device", device, ACK_TYP)
    _expect(document, "outlet", outlet, ACK_TYP)
    if staff is not None:
        _expect(document, "staff", staff, ACK_TYP)
    who, digest, version, at = (document.get(k) for k in ("staff", "policy_hash", "policy_version",
                                                            "acknowledged_at"))
    if not isinstance(who, str) or not 0 < len(who) <= MAX_ID_CHARS:
        raise DocumentError(f"{ACK_TYP}: staff must be a staff id")
    if not isinstance(digest, str) or len(digest) != 64:
        raise DocumentError(f"{ACK_TYP}: policy_hash must be a SHA-256 hex digest")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise DocumentError(f"{ACK_TYP}: policy_version must be an integer or null")
    if isinstance(at, bool) or not isinstance(at, int | float):
        raise DocumentError(f"{ACK_TYP}: acknowledged_at must be a unix time")
    return AckClaims(staff=who, policy_hash=digest, policy_version=version, acknowledged_at=float(at),
                     document=document, signature=str(envelope["signature"]))
