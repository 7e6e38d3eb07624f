"""Sign-in, refresh and sign-out: the HQ side of the binding protocol (DESIGN.md "Session binding").

HQ hands a device a challenge; the device signs {staff, device, outlet, challenge, iat} with its
key; HQ checks that signature with the key stored at enrollment, the staff password (argon2id,
lockout after repeated failures), the staff's outlet and standing, and then issues a short token
bound to the device key's thumbprint. A refresh needs a fresh challenge signed again by the
device, so a copied token dies with its lifetime. One staff member is signed in per PC: a new
sign-in ends the sessions the PC had.

These functions block (argon2, the database): routes call them in the threadpool.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import sessionmaker

from agent.binding.documents import DocumentError, check_binding
from hq.audit_log import AuditBuffer
from hq.binding.acks import current_policy_text_hash, take_ack
from hq.binding.api_models import RefreshIn, SignInIn
from hq.binding.challenges import ChallengeError, Challenges
from hq.binding.device_keys import DeviceKeys
from hq.binding.memory import EndedSessions, PolicyView
from hq.binding.store import (
    device_signins_since,
    end_device_sessions,
    end_session,
    extend_session,
    get_session,
    has_ack,
    start_session,
)
from hq.binding.tokens import SessionClaims, TokenError, issue_token, parse_token
from hq.heartbeats import LiveDevice
from hq.sharing.tracker import SharingTracker
from hq.staff.directory import StaffDirectory, facts_of
from hq.staff.passwords import hash_password, needs_rehash, verify_password
from hq.staff.store import get_staff, record_failure, record_success
from hq.store.audit import OUTCOME_DENIED, OUTCOME_OK

MAX_FAILURES = 5
LOCK_S = 900.0
BINDING_WINDOW_S = 300.0
# A token may be refreshed a little after it expired (a PC that was briefly cut off), never later.
REFRESH_GRACE_S = 60.0


class Refused(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Issued:
    token: str
    claims: SessionClaims
    policy_hash: str


class SessionIssuer:
    def __init__(self, *, key: bytes, sessions: sessionmaker, directory: StaffDirectory, challenges: Challenges,
                 ended: EndedSessions, keys: DeviceKeys, policy: PolicyView, tracker: SharingTracker,
                 audit: AuditBuffer) -> None:
        self._key = key
        self._sessions = sessions
        self._directory = directory
        self._challenges = challenges
        self._ended = ended
        self._keys = keys
        self._policy = policy
        self._tracker = tracker
        self._audit = audit

    def challenge(self, device: LiveDevice, *, now: float) -> str:
        return self._challenges.issue(device.device_id, now=now)

    # --- sign-in ---------------------------------------------------------------------------

    def sign_in(self, device: LiveDevice, data: SignInIn, *, now: float) -> Issued:
        try:
            issued = self._sign_in(device, data, now)
        except Refused as exc:
            self._audit.add(action="session_signin", outcome=OUTCOME_DENIED, reason=exc.code,
                            device_id=device.device_id, detail=f"staff {data.staff}", now=now)
            raise
        self._audit.add(action="session_signin", outcome=OUTCOME_OK, device_id=device.device_id,
                        detail=f"staff {data.staff}, session {issued.claims.sid}", now=now)
        return issued

    def _sign_in(self, device: LiveDevice, data: SignInIn, now: float) -> Issued:
        self._check_binding(device, data.binding, staff=data.staff, now=now)
        with self._sessions.begin() as session:
            member = get_staff(session, staff_id=data.staff)
            if member is not None and member.locked_until is not None and member.locked_until > now:
                raise Refused(403, "staff_locked", "too many wrong passwords; ask the outlet manager or wait")
        if not verify_password(member.password_hash if member else None, data.password):
            self._failed_password(data.staff, now)
        assert member is not None
        with self._sessions.begin() as session:
            rehash = hash_password(data.password) if needs_rehash(member.password_hash) else None
            record_success(session, staff_id=member.id, password_hash=rehash)
        self._directory.put(facts_of(member))
        if member.suspended_at is not None:
            raise Refused(403, "staff_suspended", "HQ suspended this staff member's sessions")
        if member.status != "active":
            raise Refused(403, "staff_disabled", "the staff account is disabled")
        if member.outlet_id != device.outlet_id:
            raise Refused(403, "wrong_outlet", "the staff member belongs to another outlet than this PC")
        return self._start(device, data, now)

    def _failed_password(self, staff: str, now: float) -> None:
        with self._sessions.begin() as session:
            locked_until = record_failure(session, staff_id=staff, now=now, max_failures=MAX_FAILURES,
                                          lock_s=LOCK_S)
        if locked_until is not None and locked_until > now:
            raise Refused(403, "staff_locked", "too many wrong passwords; ask the outlet manager or wait")
        raise Refused(403, "bad_credentials", "staff id or password is wrong")

    def _start(self, device: LiveDevice, data: SignInIn, now: float) -> Issued:
        sid = uuid.uuid4().hex
        ttl = self._policy.body.binding.token_ttl_s
        with self._sessions.begin() as session:
            acknowledged = self._acknowledged(session, device, data.staff, data.policy_hash, data.acknowledgement,
                                              now)
            replaced = end_device_sessions(session, device_id=device.device_id, reason="replaced", now=now)
            recent = device_signins_since(session, device_id=device.device_id, since=now - 3600)
            start_session(session, sid=sid, staff_id=data.staff, device_id=device.device_id,
                          outlet_id=device.outlet_id, now=now, expires_at=now + ttl)
        for old in replaced:
            self._ended.add(old, now + ttl)
            self._tracker.session_ended(device=device.device_id, sid=old)
        issued = self._issue(device, sid=sid, staff=data.staff, now=now, ttl=ttl, ack=acknowledged)
        self._tracker.session_started(device=device.device_id, staff=data.staff, sid=sid, outlet=device.outlet_id,
                                      expires_at=issued.claims.exp, at=now, recent=recent)
        return issued

    # --- refresh ---------------------------------------------------------------------------

    def refresh(self, device: LiveDevice, data: RefreshIn, *, now: float) -> Issued:
        try:
            issued = self._refresh(device, data, now)
        except Refused as exc:
            self._audit.add(action="session_refresh", outcome=OUTCOME_DENIED, reason=exc.code,
                            device_id=device.device_id, now=now)
            raise
        return issued

    def _refresh(self, device: LiveDevice, data: RefreshIn, now: float) -> Issued:
        try:
            claims = parse_token(self._key, data.token)
        except TokenError as exc:
            raise Refused(401, exc.reason, exc.detail) from None
        if claims.device != device.device_id:
            raise Refused(403, "wrong_device", "the token is bound to another PC")
        if claims.exp + REFRESH_GRACE_S < now:
            raise Refused(401, "expired_token", "the session expired; sign in again")
        if claims.sid in self._ended:
            raise Refused(401, "signed_out", "the session was ended; sign in again")
        binding = self._check_binding(device, data.binding, staff=claims.staff, now=now)
        if binding != claims.sid:
            raise Refused(400, "bad_binding", "the binding does not name this session")
        facts = self._directory.get(claims.staff)
        if facts is None or facts.suspended:
            raise Refused(403, "staff_suspended", "HQ suspended this staff member's sessions")
        if not facts.active:
            raise Refused(403, "staff_disabled", "the staff account is disabled")
        if facts.outlet_id != device.outlet_id:
            raise Refused(403, "wrong_outlet", "the staff member now belongs to another outlet")
        ttl = self._policy.body.binding.token_ttl_s
        with self._sessions.begin() as session:
            row = get_session(session, sid=claims.sid)
            if row is None or row.ended_at is not None:
                raise Refused(401, "signed_out", "the session was ended; sign in again")
            acknowledged = claims.ack or self._acknowledged(session, device, claims.staff, data.policy_hash,
                                                            data.acknowledgement, now)
            extend_session(session, sid=claims.sid, now=now, expires_at=now + ttl)
        issued = self._issue(device, sid=claims.sid, staff=claims.staff, now=now, ttl=ttl, ack=acknowledged)
        self._tracker.session_refreshed(device=device.device_id, staff=claims.staff, sid=claims.sid,
                                        outlet=device.outlet_id, expires_at=issued.claims.exp)
        return issued

    # --- sign-out ---------------------------------------------------------------------------

    def sign_out(self, device: LiveDevice, *, sid: str, reason: str, now: float) -> bool:
        with self._sessions.begin() as session:
            row = get_session(session, sid=sid)
            ended = end_session(session, sid=sid, device_id=device.device_id, reason=reason, now=now)
        if row is not None and row.device_id == device.device_id:
            self._ended.add(sid, row.expires_at)
            self._tracker.session_ended(device=device.device_id, sid=sid)
        self._audit.add(action="session_signout", outcome=OUTCOME_OK if ended else "noop", reason=reason[:64],
                        device_id=device.device_id, detail=f"session {sid}", now=now)
        return ended

    # --- pieces ----------------------------------------------------------------------------

    def _check_binding(self, device: LiveDevice, envelope: object, *, staff: str, now: float) -> str | None:
        """Check the device-signed binding; return the session id it names (refreshes name one)."""
        try:
            binding = check_binding(device.public_key, envelope, staff=staff, device=device.device_id,
                                    outlet=device.outlet_id)
            if abs(now - binding.iat) > BINDING_WINDOW_S:
                raise DocumentError(f"tg-bind/1: iat is {now - binding.iat:+.0f} s off HQ's clock")
            self._challenges.redeem(device.device_id, binding.challenge, now=now)
        except (DocumentError, ChallengeError) as exc:
            raise Refused(400, "bad_binding", str(exc)) from None
        return binding.sid

    def _acknowledged(self, session: object, device: LiveDevice, staff: str, policy_hash: str | None,
                      envelope: object, now: float) -> bool:
        current = current_policy_text_hash()
        if envelope is not None:
            try:
                take_ack(session, device=device, envelope=envelope, now=now, staff=staff)  # type: ignore[arg-type]
            except DocumentError as exc:
                raise Refused(400, "bad_acknowledgement", str(exc)) from None
        if policy_hash is not None and policy_hash != current:
            return False  # the PC shows an older text: it must be read and acknowledged again
        return has_ack(session, staff_id=staff, policy_hash=current)  # type: ignore[arg-type]

    def _issue(self, device: LiveDevice, *, sid: str, staff: str, now: float, ttl: int, ack: bool) -> Issued:
        claims = SessionClaims(sid=sid, staff=staff, device=device.device_id, outlet=device.outlet_id, iat=int(now),
                               exp=int(now) + ttl, jkt=self._keys.of(device).thumbprint, ack=ack)
        return Issued(token=issue_token(self._key, claims), claims=claims, policy_hash=current_policy_text_hash())
