"""The verify decision: is this business request made on the session's bound PC, by its staff?

Pure CPU on data held in memory (one Ed25519 verification and a few lookups: a token is checked
and decoded once, then known by its text), so it runs on the event loop. Checks run in a fixed
order and the first failure is the reason given; the order puts what an analyst must see first
(suspension, revocation) before what a client can fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.binding.proof import Proof, ProofError, normalize_htu, parse_proof, token_hash
from hq.auth import ReplayCache
from hq.binding.device_keys import DeviceKeys
from hq.binding.memory import EndedSessions, PolicyView
from hq.binding.tokens import SessionClaims, TokenError, parse_token
from hq.heartbeats import LiveState
from hq.staff.directory import StaffDirectory

OK = "ok"
MISSING_TOKEN = "missing_token"  # noqa: S105 - reason codes, not secrets
EXPIRED_TOKEN = "expired_token"  # noqa: S105
SIGNED_OUT = "signed_out"
UNKNOWN_STAFF = "unknown_staff"
STAFF_SUSPENDED = "staff_suspended"
STAFF_DISABLED = "staff_disabled"
UNKNOWN_DEVICE = "unknown_device"
DEVICE_REVOKED = "device_revoked"
WRONG_STAFF = "wrong_staff"
WRONG_OUTLET = "wrong_outlet"
MISSING_PROOF = "missing_proof"
MALFORMED_PROOF = "malformed_proof"
WRONG_DEVICE = "wrong_device"
BAD_PROOF = "bad_proof"
PROOF_MISMATCH = "proof_mismatch"
CLOCK_SKEW = "clock_skew"
REPLAYED_PROOF = "replayed_proof"
POLICY_NOT_ACKNOWLEDGED = "policy_not_acknowledged"
BAD_REQUEST = "bad_request"

# The proof replay cache remembers jtis this long: the policy's proof window may not exceed it.
REPLAY_WINDOW_S = 600
MAX_CACHED_TOKENS = 100_000


@dataclass(frozen=True, slots=True)
class VerifyQuery:
    method: str
    url: str
    token: str | None
    proof: str | None
    account: str | None = None  # the business account the gateway saw, when it knows one
    outlet: str | None = None  # the outlet the request acts for, when the gateway knows it
    waybill_outlet: str | None = None  # the outlet of the waybill queried, for the sharing baseline


@dataclass(frozen=True, slots=True)
class Decision:
    allow: bool
    reason: str
    detail: str = ""
    staff: str | None = None
    device: str | None = None
    outlet: str | None = None
    sid: str | None = None
    expires_at: int | None = None
    # Evidence for sharing alerts: the device whose key made the proof, when it is not the bound one.
    presenting_device: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        """What the gateway is told (never the token or proof themselves)."""
        return {"decision": "allow" if self.allow else "deny", "reason": self.reason, "detail": self.detail,
                "staff": self.staff, "device": self.device, "outlet": self.outlet, "session_id": self.sid,
                "expires_at": self.expires_at}


@dataclass(frozen=True, slots=True)
class KnownToken:
    """A token whose MAC checked out, with what every request under it needs, worked out once.

    Only what the token itself fixes is kept: whether a request is allowed is decided afresh
    each time (expiry, sign-out, suspension, revocation, the proof), ``allowed`` is just the
    answer given when it is."""

    claims: SessionClaims
    ath: str  # the hash of the token that its proofs carry
    allowed: Decision


def known_token(claims: SessionClaims, token: str) -> KnownToken:
    return KnownToken(claims=claims, ath=token_hash(token),
                      allowed=Decision(True, OK, "", staff=claims.staff, device=claims.device, outlet=claims.outlet,
                                       sid=claims.sid, expires_at=claims.exp))


@dataclass(slots=True)
class Prepared:
    """A query parsed before any device is looked up (which may need the database)."""

    query: VerifyQuery
    known: KnownToken | None = None
    proof: Proof | None = None
    failure: Decision | None = None
    proof_error: str | None = None

    @property
    def claims(self) -> SessionClaims | None:
        return self.known.claims if self.known is not None else None

    def device_ids(self) -> list[str]:
        ids = [self.known.claims.device] if self.known is not None else []
        if self.proof is not None and self.proof.device_id not in ids:
            ids.append(self.proof.device_id)
        return ids


def _deny(reason: str, detail: str, claims: SessionClaims | None = None, **extra: Any) -> Decision:
    if claims is None:
        return Decision(False, reason, detail, **extra)
    return Decision(False, reason, detail, staff=claims.staff, device=claims.device, outlet=claims.outlet,
                    sid=claims.sid, expires_at=claims.exp, **extra)


class Verifier:
    def __init__(self, *, key: bytes, live: LiveState, directory: StaffDirectory, ended: EndedSessions,
                 keys: DeviceKeys, replay: ReplayCache, policy: PolicyView) -> None:
        self._key = key
        self._live = live
        self._directory = directory
        self._ended = ended
        self._keys = keys
        self._replay = replay
        self._policy = policy
        # Tokens (only ones whose MAC checked out) and proof headers: a session presents the same
        # token and header with every request, so each is checked and decoded once.
        self._tokens: dict[str, KnownToken] = {}
        self._proof_headers: dict[str, str] = {}

    def _known(self, token: str) -> KnownToken:
        known = self._tokens.get(token)
        if known is None:
            known = known_token(parse_token(self._key, token), token)
            if len(self._tokens) >= MAX_CACHED_TOKENS:
                self._tokens.clear()
            self._tokens[token] = known
        return known

    def prepare(self, query: VerifyQuery) -> Prepared:
        prepared = Prepared(query)
        if not query.token:
            account = {"account": query.account} if query.account else {}
            prepared.failure = _deny(MISSING_TOKEN, "no bound session token: sign in on the outlet PC",
                                     staff=query.account, evidence=account)
            return prepared
        try:
            prepared.known = self._known(query.token)
        except TokenError as exc:
            prepared.failure = _deny(exc.reason, exc.detail, staff=query.account)
            return prepared
        if query.proof:
            try:
                prepared.proof = parse_proof(query.proof, self._proof_headers)
            except ProofError as exc:
                prepared.proof_error = str(exc)
        return prepared

    def decide(self, prepared: Prepared, *, now: float) -> Decision:
        if prepared.failure is not None:
            return prepared.failure
        known = prepared.known
        assert known is not None
        return self._session(prepared, known.claims, now) or self._binding(prepared, known, now)

    def _session(self, prepared: Prepared, claims: SessionClaims, now: float) -> Decision | None:
        """Is the session itself still good: time, sign-out, staff, device, account and outlet."""
        query = prepared.query
        if claims.exp <= now:
            return _deny(EXPIRED_TOKEN, f"the session token expired at {claims.exp}", claims)
        if claims.sid in self._ended:
            return _deny(SIGNED_OUT, "the staff member signed out of this session", claims)
        facts = self._directory.get(claims.staff)
        if facts is None:
            return _deny(UNKNOWN_STAFF, "the staff member is not in the directory", claims)
        if facts.suspended:
            return _deny(STAFF_SUSPENDED, "HQ suspended this staff member's sessions", claims)
        if not facts.active:
            return _deny(STAFF_DISABLED, "the staff account is disabled", claims)
        device = self._live.get(claims.device)
        if device is None:
            return _deny(UNKNOWN_DEVICE, "the bound PC is not enrolled", claims)
        if device.revoked:
            return _deny(DEVICE_REVOKED, "the bound PC was revoked", claims)
        if query.account is not None and query.account != claims.staff:
            return _deny(WRONG_STAFF, "the business account is not the staff member signed in on the PC", claims,
                         evidence={"account": query.account})
        if (query.outlet is not None and query.outlet != claims.outlet) or facts.outlet_id != claims.outlet:
            return _deny(WRONG_OUTLET, "the request is not for the outlet the session is bound to", claims,
                         evidence={"requested_outlet": query.outlet, "staff_outlet": facts.outlet_id})
        return None

    def _binding(self, prepared: Prepared, known: KnownToken, now: float) -> Decision:
        """Was this request proven by the bound PC's key, once, just now?"""
        query, proof, claims = prepared.query, prepared.proof, known.claims
        if proof is None:
            if prepared.proof_error:
                return _deny(MALFORMED_PROOF, prepared.proof_error, claims)
            return _deny(MISSING_PROOF, "the token came without a proof from its PC", claims)
        if proof.device_id != claims.device:
            return self._other_device(proof, claims)
        device = self._live.get(claims.device)
        assert device is not None
        key = self._keys.of(device)
        if key.thumbprint != claims.jkt:
            return _deny(WRONG_DEVICE, "the PC's key is not the one the token is bound to", claims)
        if not key.signed(proof):
            return _deny(BAD_PROOF, "the proof signature does not verify with the bound PC's key", claims)
        mismatch = self._mismatch(query, proof, known.ath)
        if mismatch:
            return _deny(PROOF_MISMATCH, mismatch, claims)
        window = self._policy.body.binding.proof_max_age_s
        if abs(now - proof.iat) > window:
            return _deny(CLOCK_SKEW, f"the proof time is {now - proof.iat:+.0f} s off HQ's clock "
                         f"(window {window} s)", claims)
        if not self._replay.add(claims.device, proof.jti, timestamp=proof.iat, now=now):
            return _deny(REPLAYED_PROOF, "this proof was already used", claims)
        if not claims.ack:
            return _deny(POLICY_NOT_ACKNOWLEDGED, "the staff member has not acknowledged the policy in force", claims)
        return known.allowed

    def _other_device(self, proof: Proof, claims: SessionClaims) -> Decision:
        presenter = self._live.get(proof.device_id)
        verified = presenter is not None and self._keys.of(presenter).signed(proof)
        # Only a verified signature names the presenting PC; an unverified kid is just a claim.
        return _deny(WRONG_DEVICE, "the token is bound to another PC", claims,
                     presenting_device=proof.device_id if verified else None,
                     evidence={"claimed_device": proof.device_id, "claim_verified": verified})

    @staticmethod
    def _mismatch(query: VerifyQuery, proof: Proof, ath: str) -> str | None:
        if proof.ath != ath:
            return "the proof was made for another token"
        if proof.htm != query.method.upper():
            return "the proof was made for another method"
        url = query.url
        # Fast path: a URL already in normal form (perhaps with a query) needs no parsing.
        if url.startswith(proof.htu) and (len(url) == len(proof.htu) or url[len(proof.htu)] in "?#"):
            return None
        try:
            url = normalize_htu(query.url)
        except ProofError as exc:
            return str(exc)
        if proof.htu != url:
            return "the proof was made for another URL"
        return None
