"""Per-request binding proofs in the DPoP style, shared by the agent (maker) and HQ (checker).

A business request carries two headers: the bound session token HQ issued (opaque to the agent)
and a one-time proof, a JWS in compact form signed by the device key:

    header  {"alg": "EdDSA", "typ": "tg-proof+jwt", "kid": <device id>}
    payload {"htm": METHOD, "htu": scheme://host[:port]/path, "iat": unix s, "jti": random,
             "ath": b64url(sha256(token))}

HQ checks the signature with the key it stored at enrollment for ``kid`` and that the key's
thumbprint is the token's ``cnf.jkt``. The query string is not part of ``htu`` (as in DPoP): it
may carry waybill numbers, and nothing here is ever stored.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agent.signing import b64url

HEADER_SESSION = "X-TG-Session"
HEADER_PROOF = "X-TG-Proof"
PROOF_TYP = "tg-proof+jwt"
MAX_PROOF_CHARS = 2048
MAX_URL_CHARS = 2048
MAX_CACHED_HEADERS = 100_000
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A compact JWS: three non-empty base64url segments, matched in one pass (verify parses one per request).
_COMPACT = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)")
_JTI = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_KID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class ProofError(ValueError):
    """A proof (or a URL to prove) that is malformed; the message says which part."""


@dataclass(frozen=True, slots=True)
class Proof:
    device_id: str
    htm: str
    htu: str
    iat: int
    jti: str
    ath: str
    signing_input: bytes
    signature: bytes


def token_hash(token: str) -> str:
    return b64url(hashlib.sha256(token.encode("ascii", "replace")).digest())


def normalize_htu(url: str) -> str:
    """scheme://host[:port]/path: lower-case scheme and host, default port and query dropped."""
    if not isinstance(url, str) or len(url) > MAX_URL_CHARS:
        raise ProofError(f"url: expected an absolute http(s) URL of at most {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ProofError(f"url: not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ProofError("url: expected an absolute http:// or https:// URL with a host")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = 443 if scheme == "https" else 80
    netloc = host if port in (None, default) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


def normalize_method(method: str) -> str:
    upper = method.strip().upper() if isinstance(method, str) else ""
    if upper not in METHODS:
        raise ProofError(f"method: expected one of {', '.join(sorted(METHODS))}")
    return upper


def _segment(data: dict[str, object]) -> str:
    return b64url(json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8"))


def make_proof(key: Ed25519PrivateKey, *, device_id: str, token: str, method: str, url: str, now: float) -> str:
    """A fresh proof for one request; ``now`` should be HQ's clock (local clock + learned offset)."""
    header = _segment({"alg": "EdDSA", "typ": PROOF_TYP, "kid": device_id})
    payload = _segment({
        "htm": normalize_method(method),
        "htu": normalize_htu(url),
        "iat": int(now),
        "jti": secrets.token_urlsafe(16),
        "ath": token_hash(token),
    })
    signing_input = f"{header}.{payload}".encode("ascii")
    return f"{header}.{payload}.{b64url(key.sign(signing_input))}"


def _decode_json(segment: str, what: str) -> dict[str, object]:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ProofError(f"proof {what}: not base64url JSON") from None
    if not isinstance(value, dict):
        raise ProofError(f"proof {what}: expected a JSON object")
    return value


def _text(payload: dict[str, object], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str):
        raise ProofError(f"proof payload: {name} missing or not a str")
    return value


def _int(payload: dict[str, object], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProofError(f"proof payload: {name} missing or not a int")
    return value


def _kid(segment: str) -> str:
    header = _decode_json(segment, "header")
    if header.get("alg") != "EdDSA" or header.get("typ") != PROOF_TYP or set(header) != {"alg", "typ", "kid"}:
        raise ProofError(f'proof header: expected alg "EdDSA", typ "{PROOF_TYP}" and kid')
    kid = header["kid"]
    if not isinstance(kid, str) or not _KID.match(kid):
        raise ProofError("proof header: kid is not a device id")
    return kid


def parse_proof(text: str, headers: dict[str, str] | None = None) -> Proof:
    """Structure only (the signature is checked by the caller, who knows the key); ProofError on anything odd.

    ``headers`` caches header segment -> kid: a device sends the same header with every proof,
    so a verifier that keeps the cache decodes only the payload.
    """
    if not isinstance(text, str) or not text or len(text) > MAX_PROOF_CHARS:
        raise ProofError(f"proof: expected 1 to {MAX_PROOF_CHARS} characters")
    match = _COMPACT.fullmatch(text)
    if match is None:
        raise ProofError("proof: expected three base64url segments separated by dots")
    header, body, sig = match.groups()
    kid = headers.get(header) if headers is not None else None
    if kid is None:
        kid = _kid(header)
        if headers is not None:
            if len(headers) >= MAX_CACHED_HEADERS:
                headers.clear()
            headers[header] = kid
    payload = _decode_json(body, "payload")
    htm, htu, ath, jti = _text(payload, "htm"), _text(payload, "htu"), _text(payload, "ath"), _text(payload, "jti")
    iat = _int(payload, "iat")
    if not _JTI.match(jti):
        raise ProofError("proof payload: jti must be 16 to 64 base64url characters")
    if not -(2**53) < iat < 2**53:
        raise ProofError("proof payload: iat out of range")
    signature = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    if len(signature) != 64:
        raise ProofError("proof: an Ed25519 signature is 64 bytes")
    return Proof(device_id=kid, htm=htm, htu=htu, iat=iat, jti=jti, ath=ath,
                 signing_input=text[:match.end(2)].encode("ascii"), signature=signature)


def proof_signed_by(public_key: Ed25519PublicKey, proof: Proof) -> bool:
    try:
        public_key.verify(proof.signature, proof.signing_input)
    except InvalidSignature:
        return False
    return True
