"""The staff session on this terminal: sign-in, policy acknowledgement, proofs, refresh, sign-out.

One staff member is signed in at a time. The session token HQ grants is held in memory only (a
restarted service means signing in again) and is refreshed before it expires with a fresh
device signature; proofs are made here with the device key, so the key never leaves the
service. Sign-out happens on request, on idle timeout, at shift end (outlet hours from policy),
when the screen is locked, when the OS user who signed in logs off and when HQ refuses a refresh;
a sign-out goes to HQ through the spool. The latest one the staff did not ask for is kept
(``last_signout``) so the tray can tell them why they are no longer signed in.

Thread-safe: channel handlers run concurrently. HQ calls are serialised by one lock and never
held under the state lock, so proofs are answered while a refresh waits for HQ.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.binding import hqcalls
from agent.binding.documents import ack_document, signed
from agent.binding.hqcalls import SessionGrant
from agent.binding.proof import HEADER_PROOF, HEADER_SESSION, ProofError, make_proof
from agent.events import PRIORITY_HIGH, PRIORITY_MEDIUM, Event
from agent.hqclient import HqClient, HqError, HqRejected
from agent.localchannel import ops
from agent.platform import Platform, ScreenLockChange
from agent.policy import CurrentPolicy

log = logging.getLogger(__name__)

REFRESH_RETRY_S = 5.0
# HQ's refusal codes that end the session here too (anything else is retried).
ENDING_CODES = frozenset({"expired_token", "signed_out", "bad_token", "malformed_token", "wrong_device",
                          "staff_suspended", "staff_disabled", "wrong_outlet", "device_revoked", "unknown_device"})
SIGNIN_CODES = {
    "bad_credentials": ops.ERR_BAD_CREDENTIALS,
    "staff_locked": ops.ERR_STAFF_LOCKED,
    "staff_suspended": ops.ERR_STAFF_SUSPENDED,
    "staff_disabled": ops.ERR_STAFF_DISABLED,
    "wrong_outlet": ops.ERR_WRONG_OUTLET,
    "device_revoked": ops.ERR_REVOKED,
    "unknown_device": ops.ERR_REVOKED,
}


class BindingError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class DeviceAccess:
    """What sign-in needs: the signed HQ client, the device key and this PC's outlet."""

    client: HqClient
    key: Ed25519PrivateKey
    outlet_id: str


@dataclass
class _Signed:
    grant: SessionGrant
    device_id: str
    key: Ed25519PrivateKey
    offset_s: float
    signed_in_at: float
    local_users: frozenset[str]
    pending_ack: dict[str, Any] | None = None
    next_refresh: float = 0.0
    retry_at: float = 0.0


class BindingManager:
    def __init__(self, *, access: Callable[[], DeviceAccess], policy: CurrentPolicy,
                 policy_text: Callable[[], dict[str, Any]], put_event: Callable[[Event], None],
                 on_change: Callable[[str | None], None], platform: Platform,
                 clock: Callable[[], float] = time.time) -> None:
        self._access = access
        self._policy = policy
        self._policy_text = policy_text
        self._put_event = put_event
        self._on_change = on_change
        self._platform = platform
        self._clock = clock
        self._lock = threading.Lock()
        self._hq_lock = threading.Lock()
        self._state: _Signed | None = None
        self._last_signout: ops.LastSignout | None = None
        self._console_locks = 0

    # --- what others read ------------------------------------------------------------------

    def staff(self) -> str | None:
        state = self._state
        return state.grant.staff if state else None

    def last_signout(self) -> ops.LastSignout | None:
        """The latest session end the staff did not ask for; None after one they asked for."""
        last = self._last_signout
        return last.copy() if last is not None else None

    def attention(self) -> list[str]:
        state = self._state
        if state is not None and not state.grant.acknowledged and state.pending_ack is None:
            return [ops.ATTN_POLICY_ACK_REQUIRED]
        return []

    # --- sign-in and sign-out --------------------------------------------------------------

    def signin(self, staff: str, password: str) -> dict[str, Any]:
        if not ops.valid_staff_id(staff):
            raise BindingError(ops.ERR_INVALID_ARGUMENT, "staff: expected a staff id (letters, digits, . _ -)")
        current = self._state
        if current is not None and current.grant.staff != staff:
            raise BindingError(ops.ERR_ALREADY_SIGNED_IN, f"{current.grant.staff} is signed in here; sign out first")
        locks_before = self._console_locks
        access = self._access()
        with self._hq_lock:
            try:
                grant = hqcalls.sign_in(access.client, access.key, outlet=access.outlet_id, staff=staff,
                                        password=password, policy_hash=self._policy_text().get("hash"))
            except HqRejected as exc:
                raise BindingError(SIGNIN_CODES.get(exc.code, ops.ERR_HQ_REFUSED), exc.detail) from None
            except HqError as exc:
                raise BindingError(ops.ERR_HQ_UNREACHABLE, str(exc)) from None
        now = self._clock()
        state = _Signed(grant=grant, device_id=access.client.device_id, key=access.key,
                        offset_s=access.client.clock_offset_s, signed_in_at=now,
                        local_users=self._local_users() or frozenset())
        state.next_refresh = self._refresh_time(grant, state.offset_s)
        with self._lock:
            replaced, self._state = self._state, state
        if replaced is not None and replaced.grant.session_id != grant.session_id:
            self._ended(replaced, "replaced")
        log.info("staff %s signed in (session %s, policy acknowledged: %s)", staff, grant.session_id,
                 grant.acknowledged)
        self._put_event(Event("session.signed_in", {"staff_id": staff, "session_id": grant.session_id,
                                                    "acknowledged": grant.acknowledged}, priority=PRIORITY_MEDIUM))
        self._on_change(staff)
        if self._console_locks != locks_before:
            # The screen was locked while HQ answered: the session must not outlive the lock.
            self.signout(ops.SIGNOUT_SCREEN_LOCKED)
        return {"staff": staff}

    def signout(self, reason: str = ops.SIGNOUT_STAFF) -> dict[str, Any]:
        with self._lock:
            state, self._state = self._state, None
            if state is not None:
                # The staff's own sign-out needs no explanation, and an older one no longer applies.
                self._last_signout = None if reason == ops.SIGNOUT_STAFF else {
                    "reason": reason, "at": self._clock(), "staff": state.grant.staff}
        if state is None:
            return {"staff": None}
        self._ended(state, reason)
        self._on_change(None)
        return {"staff": state.grant.staff}

    def screen_lock_changed(self, change: ScreenLockChange) -> None:
        """From the platform's screen-lock watch, on its thread: a locked console ends the session.

        An outlet PC is one shared console, so a lock of any console session counts, whoever the
        OS user is. Remote sessions (RDP, SSH) are not where staff sign in; their locks do not.
        Policy may switch this off (`binding.signout_on_lock: false`, e.g. a counter PC whose
        screen saver locks while staff serve customers); idle and shift-end sign-out still apply.
        """
        if not (change.locked and change.console) or not self._policy.body.binding.signout_on_lock:
            return
        with self._lock:
            self._console_locks += 1
        if self._state is not None:
            log.info("console session %s locked the screen", change.session)
            self.signout(ops.SIGNOUT_SCREEN_LOCKED)

    def _ended(self, state: _Signed, reason: str) -> None:
        # HQ learns through the spool (delivered within a second or two when it is reachable); the
        # token also expires on its own, and without this PC's key it is useless elsewhere.
        log.info("staff %s signed out (%s)", state.grant.staff, reason)
        self._put_event(Event("session.signed_out", {"staff_id": state.grant.staff,
                                                     "session_id": state.grant.session_id, "reason": reason},
                              priority=PRIORITY_HIGH))

    # --- the policy acknowledgement ----------------------------------------------------------

    def acknowledge(self, staff: str, policy_hash: str, typed_staff: str) -> dict[str, Any]:
        state = self._state
        if state is None:
            raise BindingError(ops.ERR_NOT_SIGNED_IN, "sign in before acknowledging the policy")
        if staff != state.grant.staff or typed_staff.strip() != state.grant.staff:
            raise BindingError(ops.ERR_STAFF_MISMATCH, "the typed staff id is not the signed-in staff")
        text = self._policy_text()
        if policy_hash != text.get("hash"):
            raise BindingError(ops.ERR_POLICY_CHANGED, "the policy changed; read it again")
        at = self._clock()
        envelope = signed(state.key, ack_document(staff=staff, device=state.device_id, outlet=state.grant.outlet_id,
                                                  policy_hash=policy_hash, policy_version=text.get("version"),
                                                  acknowledged_at=at))
        # Written first (the register at HQ gets it even if the refresh below cannot reach HQ).
        self._put_event(Event("policy.acknowledged", {
            "staff_id": staff, "policy_hash": policy_hash, "policy_version": text.get("version"),
            "acknowledged_at": at, "acknowledgement": envelope}, priority=PRIORITY_HIGH))
        with self._lock:
            if self._state is state:
                state.pending_ack = envelope
        delivered = self._refresh(state)
        return {"acknowledged_at": at, "queued": not delivered}

    # --- proofs --------------------------------------------------------------------------------

    def proof(self, method: str, url: str) -> dict[str, Any]:
        state = self._state
        if state is None:
            raise BindingError(ops.ERR_NOT_SIGNED_IN, "no staff member is signed in on this PC")
        if not state.grant.acknowledged:
            raise BindingError(ops.ERR_POLICY_ACK_REQUIRED, "the policy must be acknowledged (and HQ told) first")
        now = self._clock()
        expiry = state.grant.local_expiry(state.offset_s)
        if expiry <= now:
            raise BindingError(ops.ERR_SESSION_EXPIRED, "the session could not be refreshed; is HQ reachable?")
        try:
            proof = make_proof(state.key, device_id=state.device_id, token=state.grant.token, method=method, url=url,
                               now=now + state.offset_s)
        except ProofError as exc:
            raise BindingError(ops.ERR_INVALID_ARGUMENT, str(exc)) from None
        return {"headers": {HEADER_SESSION: state.grant.token, HEADER_PROOF: proof}, "staff": state.grant.staff,
                "expires_at": expiry}

    # --- the periodic part -------------------------------------------------------------------

    def tick(self) -> None:
        """Every second or so: sign out when policy says so, refresh the token when it is due."""
        state = self._state
        if state is None:
            return
        now = self._clock()
        reason = self._signout_reason(state, now)
        if reason is not None:
            self.signout(reason)
            return
        waiting_ack = state.pending_ack is not None and not state.grant.acknowledged
        if (now >= state.next_refresh or waiting_ack) and now >= state.retry_at:
            self._refresh(state)

    def _refresh(self, state: _Signed) -> bool:
        """Refresh (carrying a pending acknowledgement); True when HQ answered."""
        with self._hq_lock:
            if self._state is not state:
                return False
            try:
                access = self._access()
                grant = hqcalls.refresh(access.client, state.key, state.grant,
                                        policy_hash=self._policy_text().get("hash"), acknowledgement=state.pending_ack)
            except HqRejected as exc:
                if exc.code in ENDING_CODES:
                    log.warning("HQ ended the session of staff %s: %s", state.grant.staff, exc.code)
                    self.signout(ops.SIGNOUT_HQ_PREFIX + exc.code)
                    return True
                log.warning("session refresh refused (%s); retrying", exc.code)
                state.retry_at = self._clock() + REFRESH_RETRY_S
                return False
            except (HqError, BindingError) as exc:
                log.warning("session refresh failed (%s); retrying", exc)
                state.retry_at = self._clock() + REFRESH_RETRY_S
                return False
            with self._lock:
                if self._state is state:
                    state.grant = grant
                    state.offset_s = access.client.clock_offset_s
                    if grant.acknowledged:
                        state.pending_ack = None
                    state.next_refresh = self._refresh_time(grant, state.offset_s)
            return True

    def _refresh_time(self, grant: SessionGrant, offset_s: float) -> float:
        # Refresh once two thirds of the lifetime are gone: a third is left to ride out a short outage.
        lifetime = max(1, grant.expires_at - grant.issued_at)
        return grant.local_expiry(offset_s) - lifetime / 3

    def _signout_reason(self, state: _Signed, now: float) -> str | None:
        binding = self._policy.body.binding
        idle = self._platform.idle_seconds() if binding.idle_signout_s else None
        if idle is not None and idle >= binding.idle_signout_s:
            return ops.SIGNOUT_IDLE
        hours = binding.hours_for(state.grant.outlet_id)
        if hours is not None and hours.is_open(state.signed_in_at) and not hours.is_open(now):
            return ops.SIGNOUT_SHIFT_END
        if state.local_users:
            present = self._local_users()
            if present is not None and not state.local_users & present:
                return ops.SIGNOUT_LOGOFF
        return None

    def _local_users(self) -> frozenset[str] | None:
        """Users with a local (console) session; None when the OS cannot say."""
        try:
            return frozenset(s.user for s in self._platform.user_sessions() if s.user and not s.remote)
        except Exception:
            log.exception("cannot list OS sessions; logoff sign-out is not checked this time")
            return None
