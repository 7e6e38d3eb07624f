"""What verify reads on the event loop, kept in memory: ended sessions, gateway keys and the
parsed policy. Each is refreshed from the database by a worker (device keys: device_keys.py)."""

from __future__ import annotations

import threading
import time

from sqlalchemy.orm import sessionmaker

from agent.policy import DEFAULT_BODY, PolicyBody, PolicyError, parse_policy_body
from hq.binding.store import active_gateway_keys, ended_since, hash_gateway_key
from hq.policy_cache import PolicyCache

POLL_OVERLAP_S = 5.0
UNKNOWN_KEY_RELOAD_S = 2.0
REVOKED_KEY_RELOAD_S = 5.0  # the key table is a few rows: reloading it this often costs nothing
MAX_PRESENTED_KEYS = 1000


class EndedSessions:
    """Session ids that were signed out (or replaced) before their token expired."""

    def __init__(self, sessions: sessionmaker) -> None:
        self._sessions = sessions
        self._ended: dict[str, float] = {}
        self._lock = threading.Lock()
        self._polled_at = 0.0

    def __contains__(self, sid: object) -> bool:
        return sid in self._ended

    def add(self, sid: str, expires_at: float) -> None:
        with self._lock:
            self._ended[sid] = expires_at

    def poll(self) -> int:
        started = time.time()
        with self._sessions() as session:
            rows = ended_since(session, since=self._polled_at - POLL_OVERLAP_S)
        self._polled_at = started
        with self._lock:
            for sid, expires_at in rows:
                self._ended[sid] = expires_at
            # An ended session's tokens expire anyway; after that it need not be remembered.
            for sid in [sid for sid, exp in self._ended.items() if exp < started - 3600]:
                del self._ended[sid]
        return len(rows)


class GatewayKeys:
    """Gateway API keys by SHA-256; a key made with the CLI while HQ serves is picked up on first use,
    and a key revoked with the CLI (another process) is refused within REVOKED_KEY_RELOAD_S (`poll`)."""

    def __init__(self, sessions: sessionmaker) -> None:
        self._sessions = sessions
        # (name by key hash, name by key as presented): swapped together by a reload, so a key
        # remembered as presented can never outlive the key set it was found in.
        self._keys: tuple[dict[str, str], dict[str, str]] = ({}, {})
        self._reloaded_at = 0.0
        self.reload()

    def name_of(self, key: str | None) -> str | None:
        if not key or len(key) > 256:
            return None
        by_hash, presented = self._keys
        name = presented.get(key)
        if name is None:
            # Hashed once per key and reload, not per request: a gateway sends its key every time.
            name = by_hash.get(hash_gateway_key(key))
            if name is not None and len(presented) < MAX_PRESENTED_KEYS:
                presented[key] = name
        return name

    def should_reload(self) -> bool:
        """After an unknown key, reload at most every few seconds (a flood of bad keys costs nothing)."""
        return time.monotonic() - self._reloaded_at > UNKNOWN_KEY_RELOAD_S

    def poll(self) -> None:
        """From the binding poller: reload when the keys are older than REVOKED_KEY_RELOAD_S."""
        if time.monotonic() - self._reloaded_at >= REVOKED_KEY_RELOAD_S:
            self.reload()

    def reload(self) -> None:
        self._reloaded_at = time.monotonic()
        with self._sessions() as session:
            self._keys = (active_gateway_keys(session), {})


class PolicyView:
    """The policy body in force, parsed once per version."""

    def __init__(self, policies: PolicyCache) -> None:
        self._policies = policies
        self._version = -1
        self._body = DEFAULT_BODY

    @property
    def body(self) -> PolicyBody:
        served = self._policies.current
        if served.version != self._version:
            try:
                self._body = parse_policy_body(served.document.get("body", {}))
            except PolicyError:
                self._body = DEFAULT_BODY  # cannot happen for a published policy; be safe anyway
            self._version = served.version
        return self._body
