"""Sign-in challenges: stateless (a MAC over device, time and randomness), redeemable once.

Nothing is stored when a challenge is handed out, so a flood of challenge requests costs no
memory; a redeemed one is remembered in a replay cache until it would have expired anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from agent.signing import SignatureError, b64url, b64url_decode
from hq.auth import ReplayCache

CHALLENGE_TTL_S = 120
_NONCE_BYTES = 16
_MAC_BYTES = 16


class ChallengeError(ValueError):
    pass


class Challenges:
    def __init__(self, session_key: bytes, *, ttl_s: float = CHALLENGE_TTL_S, max_entries: int = 200_000) -> None:
        # A key of its own, derived from the session key: a challenge can never pass for a token MAC.
        self._key = hmac.new(session_key, b"tg-challenge-key", hashlib.sha256).digest()
        self._ttl_s = ttl_s
        self._redeemed = ReplayCache(window_s=ttl_s, max_entries=max_entries)

    def _mac(self, device_id: str, body: bytes) -> bytes:
        return hmac.new(self._key, device_id.encode("utf-8") + b"\n" + body, hashlib.sha256).digest()[:_MAC_BYTES]

    def issue(self, device_id: str, *, now: float) -> str:
        body = int(now).to_bytes(8, "big") + secrets.token_bytes(_NONCE_BYTES)
        return b64url(body + self._mac(device_id, body))

    def redeem(self, device_id: str, challenge: str, *, now: float) -> None:
        """Accept a challenge issued to this device within the TTL, once; ChallengeError says why not."""
        try:
            raw = b64url_decode(challenge) if len(challenge) <= 64 else b""
        except SignatureError:
            raw = b""
        if len(raw) != 8 + _NONCE_BYTES + _MAC_BYTES:
            raise ChallengeError("the challenge is malformed")
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._mac(device_id, body)):
            raise ChallengeError("the challenge was not issued to this device")
        issued = int.from_bytes(body[:8], "big")
        if not now - self._ttl_s <= issued <= now + 5:
            raise ChallengeError(f"the challenge is older than {self._ttl_s:.0f} s; ask for a new one")
        if not self._redeemed.add(device_id, challenge, timestamp=issued, now=now):
            raise ChallengeError("the challenge was already used")
