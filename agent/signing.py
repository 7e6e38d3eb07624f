"""The signed-request wire format shared by the agent (signer) and HQ (verifier).

Every agent request carries five headers; the signature covers the method, path (with query),
the SHA-256 of the exact body bytes, the timestamp, a random nonce, the per-device sequence
number and the device id. HQ verifies with the public key it stored at enrollment only, never
with a key carried in the message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

HEADER_DEVICE = "X-TG-Device"
HEADER_TIMESTAMP = "X-TG-Timestamp"
HEADER_NONCE = "X-TG-Nonce"
HEADER_SEQ = "X-TG-Seq"
HEADER_SIGNATURE = "X-TG-Signature"
SIGNED_HEADERS = (HEADER_DEVICE, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SEQ, HEADER_SIGNATURE)

_SCHEME = b"TG1"
_ENROLL_SCHEME = b"TG1-ENROLL"


class SignatureError(ValueError):
    """A signature, key or signed header is missing, malformed or does not verify."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"not base64url: {exc}") from exc


def canonical_json(obj: Any) -> bytes:
    """The one byte form of a JSON document that is signed (policies, acknowledgements)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return b64url(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def load_public_key(text: str) -> Ed25519PublicKey:
    raw = b64url_decode(text)
    if len(raw) != 32:
        raise SignatureError(f"an Ed25519 public key is 32 bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def jwk_thumbprint(public_key: str) -> str:
    """RFC 7638 thumbprint of the device key as an OKP JWK: the `cnf.jkt` of bound tokens."""
    jwk = canonical_json({"crv": "Ed25519", "kty": "OKP", "x": public_key})
    return b64url(hashlib.sha256(jwk).digest())


def canonical_request(
    *, method: str, path: str, body: bytes, timestamp: int, nonce: str, seq: int, device_id: str
) -> bytes:
    body_hash = hashlib.sha256(body).hexdigest()
    parts = [method.upper(), path, body_hash, str(timestamp), nonce, str(seq), device_id]
    return _SCHEME + b"\n" + "\n".join(parts).encode("utf-8")


def sign_request(
    key: Ed25519PrivateKey, *, method: str, path: str, body: bytes, device_id: str, seq: int, timestamp: int
) -> dict[str, str]:
    nonce = secrets.token_urlsafe(16)
    message = canonical_request(
        method=method, path=path, body=body, timestamp=timestamp, nonce=nonce, seq=seq, device_id=device_id
    )
    return {
        HEADER_DEVICE: device_id,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_NONCE: nonce,
        HEADER_SEQ: str(seq),
        HEADER_SIGNATURE: b64url(key.sign(message)),
    }


@dataclass(frozen=True)
class SignedHeaders:
    device_id: str
    timestamp: int
    nonce: str
    seq: int
    signature: bytes


def parse_signed_headers(headers: Mapping[str, str]) -> SignedHeaders:
    """Read the five signature headers; raise SignatureError naming the first bad one."""
    lowered = {k.lower(): v for k, v in headers.items()}
    values = {}
    for name in SIGNED_HEADERS:
        value = lowered.get(name.lower())
        if not value:
            raise SignatureError(f"missing header {name}")
        if len(value) > 256:
            raise SignatureError(f"header {name} is longer than 256 characters")
        values[name] = value
    try:
        timestamp = int(values[HEADER_TIMESTAMP])
        seq = int(values[HEADER_SEQ])
    except ValueError as exc:
        raise SignatureError(f"{HEADER_TIMESTAMP} and {HEADER_SEQ} must be integers") from exc
    if not 8 <= len(values[HEADER_NONCE]) <= 64:
        raise SignatureError(f"{HEADER_NONCE} must be 8 to 64 characters")
    return SignedHeaders(
        device_id=values[HEADER_DEVICE],
        timestamp=timestamp,
        nonce=values[HEADER_NONCE],
        seq=seq,
        signature=b64url_decode(values[HEADER_SIGNATURE]),
    )


def verify_request(
    public_key: Ed25519PublicKey, signed: SignedHeaders, *, method: str, path: str, body: bytes
) -> None:
    message = canonical_request(
        method=method,
        path=path,
        body=body,
        timestamp=signed.timestamp,
        nonce=signed.nonce,
        seq=signed.seq,
        device_id=signed.device_id,
    )
    try:
        public_key.verify(signed.signature, message)
    except InvalidSignature as exc:
        raise SignatureError("signature does not verify with the enrolled device key") from exc


def enrollment_message(token: str, public_key: str) -> bytes:
    """What a new device signs to prove it holds the key it asks HQ to register."""
    return _ENROLL_SCHEME + b"\n" + token.encode("utf-8") + b"\n" + public_key.encode("ascii")


def sign_document(key: Ed25519PrivateKey, document: Any) -> str:
    return b64url(key.sign(canonical_json(document)))


def verify_document(public_key: Ed25519PublicKey, document: Any, signature: str) -> None:
    try:
        public_key.verify(b64url_decode(signature), canonical_json(document))
    except InvalidSignature as exc:
        raise SignatureError("document signature does not verify with the pinned HQ policy key") from exc
