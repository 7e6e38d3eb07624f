"""Everything a running HQ holds: the database, keys, live device state, caches and workers."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from agent.signing import public_key_text
from hq.audit_log import AuditBuffer
from hq.auth import ReplayCache, RequestVerifier
from hq.db import create_schema, make_engine, make_sessions
from hq.heartbeats import LiveState
from hq.policy_cache import PolicyCache
from hq.policy_keys import ensure_policy_key
from hq.settings import Settings
from hq.silence import SilenceMonitor
from hq.store.policies import ensure_default_policy
from hq.worker import PeriodicWorker

log = logging.getLogger(__name__)


@dataclass
class HqState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker
    policy_key: Ed25519PrivateKey
    live: LiveState
    replay: ReplayCache
    audit: AuditBuffer
    policies: PolicyCache
    verifier: RequestVerifier
    silence: SilenceMonitor
    workers: list[PeriodicWorker] = field(default_factory=list)

    @property
    def policy_public_key(self) -> str:
        return public_key_text(self.policy_key)

    def flush(self) -> None:
        """Write buffered heartbeat state and audit records now (the sync worker does this every period)."""
        self.live.flush()
        self.audit.flush(self.sessions)

    def start_workers(self) -> None:
        sync = PeriodicWorker(
            name="hq-sync",
            period_s=self.settings.flush_interval_s,
            tasks=[self.live.flush, self._flush_audit, self.live.poll_revocations, self.policies.refresh],
        )
        silence = PeriodicWorker(name="hq-silence", period_s=self.settings.silence_period_s, tasks=[self.silence.check])
        self.workers = [sync, silence]
        for worker in self.workers:
            worker.start()

    def stop_workers(self) -> None:
        # Silence first (no final run: a shutdown is not a reason to call PCs silent), then the
        # sync worker's final run flushes heartbeat state and the audit buffer.
        for worker in self.workers:
            worker.stop(final_run=worker.name == "hq-sync")
        self.workers = []

    def close(self) -> None:
        self.engine.dispose()

    def _flush_audit(self) -> None:
        self.audit.flush(self.sessions)


def _ensure_policy(sessions: sessionmaker, key: Ed25519PrivateKey) -> None:
    try:
        with sessions.begin() as session:
            ensure_default_policy(session, key=key, now=time.time())
    except IntegrityError:
        log.info("the default policy was published concurrently by another process")


def build_state(settings: Settings) -> HqState:
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = make_engine(settings.db_url)
    create_schema(engine)
    sessions = make_sessions(engine)
    key = ensure_policy_key(settings.data_dir)
    _ensure_policy(sessions, key)
    live = LiveState(sessions)
    replay = ReplayCache(window_s=settings.max_past_s, max_entries=settings.replay_cache_entries)
    policies = PolicyCache(sessions)
    return HqState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        policy_key=key,
        live=live,
        replay=replay,
        audit=AuditBuffer(max_entries=settings.audit_buffer_entries),
        policies=policies,
        verifier=RequestVerifier(
            live=live, replay=replay, max_past_s=settings.max_past_s, max_future_s=settings.max_future_s
        ),
        silence=SilenceMonitor(
            sessions=sessions,
            live=live,
            silent_after_s=settings.silent_after_s,
            default_interval_s=settings.heartbeat_interval_s,
        ),
    )
