"""Everything session binding holds in a running HQ, built once beside HqState, with its workers."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import anyio.to_thread
from sqlalchemy import select

from agent.binding.documents import DocumentError
from hq.auth import ReplayCache
from hq.binding import proof_replay
from hq.binding.acks import take_ack
from hq.binding.challenges import Challenges
from hq.binding.device_keys import DeviceKeys
from hq.binding.issuer import SessionIssuer
from hq.binding.keys import ensure_session_key
from hq.binding.memory import EndedSessions, GatewayKeys, PolicyView
from hq.binding.models import StaffSession
from hq.binding.proof_replay import replay_key
from hq.binding.store import end_session
from hq.binding.verify import REPLAY_WINDOW_S, Decision, Verifier, VerifyQuery
from hq.sharing.baseline import Baselines
from hq.sharing.respond import Responder, WriteQueue
from hq.sharing.tracker import SharingTracker
from hq.staff.directory import StaffDirectory
from hq.state import HqState
from hq.worker import PeriodicWorker

log = logging.getLogger(__name__)

POLL_PERIOD_S = 0.25  # staff suspensions and sign-outs made elsewhere: effective well within 1 s
WRITE_PERIOD_S = 0.2
SWEEP_PERIOD_S = 2.0
ACK_KIND = "policy.acknowledged"
SIGNOUT_KIND = "session.signed_out"
FINDING_KIND = "finding"


class BindingService:
    def __init__(self, hq: HqState) -> None:
        self.hq = hq
        self.key = ensure_session_key(hq.settings.data_dir)
        self.policy = PolicyView(hq.policies)
        self.directory = StaffDirectory(hq.sessions, on_cleared=lambda staff: self.baselines.forget_window(staff))
        self.ended = EndedSessions(hq.sessions)
        self.ended.poll()
        self.gateways = GatewayKeys(hq.sessions)
        self.device_keys = DeviceKeys()
        self.writes = WriteQueue(hq.sessions)
        self.baselines = Baselines(hq.sessions)
        self.responder = Responder(policy=self.policy, directory=self.directory, audit=hq.audit, writes=self.writes)
        self.tracker = SharingTracker(policy=self.policy, live=hq.live, baselines=self.baselines,
                                      respond=self.responder)
        self._replay = ReplayCache(window_s=REPLAY_WINDOW_S, max_entries=2_000_000, key=replay_key(self.key))
        proof_replay.load(self._replay, hq.settings.data_dir, time.time())
        self.verifier = Verifier(key=self.key, live=hq.live, directory=self.directory, ended=self.ended,
                                 keys=self.device_keys, replay=self._replay, policy=self.policy)
        self.issuer = SessionIssuer(key=self.key, sessions=hq.sessions, directory=self.directory,
                                    challenges=Challenges(self.key), ended=self.ended, keys=self.device_keys,
                                    policy=self.policy, tracker=self.tracker, audit=hq.audit)
        self._restore_sessions()
        self._workers: list[PeriodicWorker] = []

    def _restore_sessions(self) -> None:
        now = time.time()
        with self.hq.sessions() as session:
            rows = list(session.scalars(select(StaffSession).where(StaffSession.ended_at.is_(None),
                                                                   StaffSession.expires_at > now)))
        for row in rows:
            self.tracker.session_refreshed(device=row.device_id, staff=row.staff_id, sid=row.id,
                                           outlet=row.outlet_id, expires_at=row.expires_at)

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._workers = [
            PeriodicWorker(name="binding-poll", period_s=POLL_PERIOD_S,
                           tasks=[self.directory.poll, self.ended.poll, self.gateways.poll]),
            PeriodicWorker(name="binding-write", period_s=WRITE_PERIOD_S,
                           tasks=[self.writes.flush, self.baselines.flush]),
            PeriodicWorker(name="binding-sweep", period_s=SWEEP_PERIOD_S, tasks=[self.sweep]),
        ]
        for worker in self._workers:
            worker.start()

    def stop(self) -> None:
        for worker in self._workers:
            worker.stop(final_run=worker.name == "binding-write")
        self._workers = []
        try:
            saved = proof_replay.save(self._replay, self.hq.settings.data_dir, time.time())
            log.info("kept %d recent proofs for the next start", saved)
        except OSError as exc:
            log.warning("cannot keep the recent proofs for the next start: %s", exc)

    def flush(self) -> None:
        """Write queued alerts, suspensions and baselines now (tests; the writer does it every 0.2 s)."""
        self.writes.flush()
        self.baselines.flush()

    def sweep(self) -> None:
        self.tracker.sweep(time.time())

    # --- verify ----------------------------------------------------------------------------

    async def decide(self, query: VerifyQuery) -> Decision:
        prepared = self.verifier.prepare(query)
        for device_id in prepared.device_ids():
            if self.hq.live.get(device_id) is None:
                await anyio.to_thread.run_sync(self.hq.live.load, device_id)
        now = time.time()
        decision = self.verifier.decide(prepared, now=now)
        self.tracker.on_decision(decision, now=now, waybill_outlet=query.waybill_outlet)
        # Coalesced per staff, device and reason within a flush: every decision is counted.
        self.hq.audit.add(action="verify", outcome="allow" if decision.allow else "deny", reason=decision.reason,
                          device_id=decision.device, detail=f"staff {decision.staff}" if decision.staff else None,
                          now=now)
        return decision

    # --- what devices report ---------------------------------------------------------------

    def on_events(self, device_id: str, events: Sequence[dict[str, Any]]) -> None:
        """Acknowledgements and sign-outs queued while HQ was away, and findings that matter for sharing."""
        relevant = [e for e in events if e.get("kind") in (ACK_KIND, SIGNOUT_KIND, FINDING_KIND)]
        if not relevant:
            return
        device = self.hq.live.get(device_id) or self.hq.live.load(device_id)
        if device is None:
            return
        now = time.time()
        for event in relevant:
            body = event.get("body") or {}
            if event["kind"] == FINDING_KIND:
                self.tracker.on_finding(device=device_id, body=body, now=now)
                continue
            try:
                with self.hq.sessions.begin() as session:
                    if event["kind"] == ACK_KIND:
                        take_ack(session, device=device, envelope=body.get("acknowledgement"), now=now)
                    elif isinstance(body.get("session_id"), str):
                        self._ended_by_event(session, device_id, body, now)
            except DocumentError as exc:
                log.warning("device %s sent an acknowledgement that does not check out: %s", device_id, exc)

    def _ended_by_event(self, session: Any, device_id: str, body: dict[str, Any], now: float) -> None:
        sid = str(body["session_id"])[:64]
        reason = str(body.get("reason") or "signout")[:64]
        if end_session(session, sid=sid, device_id=device_id, reason=reason, now=now):
            self.ended.add(sid, now + self.policy.body.binding.token_ttl_s)
            self.tracker.session_ended(device=device_id, sid=sid)
