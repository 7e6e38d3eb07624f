"""Delivers what the spool holds to HQ: heartbeats, event batches and policy pulls.

The uplink reads nothing but the spool (DESIGN.md), deletes an event only after HQ has
committed it, backs off with full jitter while HQ is away, honours 429 Retry-After, halves the
batch on 413 and on 408 (a link too slow for HQ's body deadline), and stops sending for good when
HQ says the device is revoked.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.backoff import Backoff
from agent.events import PRIORITY_HIGH, Event
from agent.heartbeat import HeartbeatSource
from agent.hqclient import HqBadAnswer, HqClient, HqError, HqRejected, HqThrottled, HqTooLarge
from agent.policy import CurrentPolicy, PolicyError
from agent.spool import Spool
from agent.status_file import StatusFile

log = logging.getLogger(__name__)

REVOKED_CODES = frozenset({"device_revoked", "unknown_device"})
IDLE_POLL_S = 1.0
REVOKED_POLL_S = 10.0


@dataclass(frozen=True)
class UplinkTiming:
    heartbeat_interval_s: float = 10.0
    policy_interval_s: float = 300.0
    batch_size: int = 200


class Uplink:
    def __init__(self, *, connect: Callable[[], HqClient | None], spool: Spool, status: StatusFile,
                 policy: CurrentPolicy, heartbeats: HeartbeatSource, backoff: Backoff,
                 timing: UplinkTiming, staff: Callable[[], str | None] = lambda: None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._connect = connect
        self._spool = spool
        self._status = status
        self._policy = policy
        self._heartbeats = heartbeats
        self._backoff = backoff
        self._timing = timing
        self._staff = staff
        self._monotonic = monotonic
        self._client: HqClient | None = None
        self._revoked = False
        self._batch = timing.batch_size
        self._next_heartbeat = 0.0
        self._next_policy = 0.0
        self._rejected_policy_version: int | None = None

    # -- the loop ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            stop.wait(self.step())

    def step(self) -> float:
        """One round of work; returns how long to wait before the next."""
        client = self._client_or_none()
        if client is None:
            return REVOKED_POLL_S
        now = self._monotonic()
        try:
            if now >= self._next_heartbeat:
                self._send_heartbeat(client)
                self._next_heartbeat = now + self._timing.heartbeat_interval_s
            if now >= self._next_policy:
                self._next_policy = now + self._timing.policy_interval_s
                self._pull_policy(client)
            more = self._send_batch(client)
        except HqThrottled as exc:
            self._failed(exc)
            return exc.retry_after_s
        except HqRejected as exc:
            if exc.status == 401 and exc.code in REVOKED_CODES:
                self._stop_sending(exc)
                return REVOKED_POLL_S
            self._failed(exc)
            return self._backoff.next_delay()
        except HqError as exc:
            self._failed(exc)
            return self._backoff.next_delay()
        self._backoff.reset()
        self._status.update(hq_reachable=True, last_error=None, spool_depth=self._spool.depth())
        if more:
            return 0.0
        return max(0.0, min(IDLE_POLL_S, self._next_heartbeat - self._monotonic()))

    def flush(self, deadline_s: float) -> int:
        """Bounded last delivery at shutdown; returns how many events were delivered."""
        client = self._client_or_none()
        delivered = 0
        end = self._monotonic() + deadline_s
        while client is not None and self._monotonic() < end:
            before = self._spool.depth()
            try:
                if not self._send_batch(client):
                    return delivered + before
            except HqError as exc:
                log.warning("final flush stopped: %s", exc)
                break
            delivered += before - self._spool.depth()
        return delivered

    # -- pieces -----------------------------------------------------------------------------

    def _client_or_none(self) -> HqClient | None:
        if self._client is None or self._revoked:
            client = self._connect()
            if client is None:
                self._status.update(enrolled=False)
                return None
            if self._revoked and client.device_id == self._client_device_id():
                client.close()
                return None  # still the revoked identity: stay quiet until re-enrolled
            self._replace_client(client)
        return self._client

    def _client_device_id(self) -> str | None:
        return self._client.device_id if self._client else None

    def _replace_client(self, client: HqClient) -> None:
        if self._client is not None:
            self._client.close()
        self._client = client
        self._revoked = False
        self._next_heartbeat = self._next_policy = 0.0
        self._status.update(enrolled=True, revoked=False, device_id=client.device_id)

    def _stop_sending(self, exc: HqRejected) -> None:
        self._revoked = True
        log.error("HQ refused this device (%s); no more sending until re-enrolled", exc.code)
        self._status.update(revoked=True, hq_reachable=True, last_error=str(exc))

    def _failed(self, exc: HqError) -> None:
        log.warning("HQ delivery failed: %s", exc)
        self._status.update(hq_reachable=False, last_error=str(exc), spool_depth=self._spool.depth())

    def _send_heartbeat(self, client: HqClient) -> None:
        lost = self._spool.losses()  # totals since the spool was made: HQ keeps the latest
        payload = self._heartbeats.payload(
            policy_version=self._policy.version, staff=self._staff(), spool_depth=self._spool.depth(),
            lost_events=lost, clock_offset_s=client.clock_offset_s,
        )
        answer = client.request("POST", "/v1/heartbeat", payload)
        latest = answer.get("policy_version")
        if isinstance(latest, int) and latest != self._policy.version and latest != self._rejected_policy_version:
            self._next_policy = 0.0
        # One update: a reader must never see an accepted heartbeat beside "HQ unreachable".
        self._status.update(last_heartbeat=time.time(), clock_offset_s=client.clock_offset_s,
                            hq_reachable=True, last_error=None)

    def _pull_policy(self, client: HqClient) -> None:
        """Fetch and adopt HQ's policy; a failure here never holds up event delivery."""
        try:
            answer = client.request("GET", "/v1/policy")
        except HqRejected as exc:
            if exc.status == 401 and exc.code in REVOKED_CODES:
                raise
            log.warning("policy pull refused: %s", exc)
            return
        except (HqBadAnswer, HqTooLarge) as exc:
            log.warning("policy pull failed: %s", exc)
            return
        document, signature = answer.get("policy"), answer.get("signature")
        version = document.get("version") if isinstance(document, dict) else None
        if version is not None and version == self._policy.version:
            return
        try:
            policy = self._policy.offer(document, signature)
        except PolicyError as exc:
            self._reject_policy(version, exc)
            return
        log.info("policy version %s in force", policy.version)
        self._status.update(policy_version=policy.version, policy_error=None)

    def _reject_policy(self, version: Any, exc: PolicyError) -> None:
        self._rejected_policy_version = version if isinstance(version, int) else None
        log.error("policy from HQ refused, keeping version %s: %s", self._policy.version, exc)
        self._spool.put(Event("policy.rejected", {"version": self._rejected_policy_version, "reason": str(exc)[:500],
                                                  "kept_version": self._policy.version}, priority=PRIORITY_HIGH))
        self._status.update(policy_error=str(exc)[:500])

    def _send_batch(self, client: HqClient) -> bool:
        """Deliver one batch; True when more may be waiting."""
        batch = self._spool.peek(self._batch)
        if not batch:
            return False
        try:
            answer = client.request("POST", "/v1/events", {"events": [e.to_wire() for e in batch]})
        except HqTooLarge:
            self._shrink_batch(batch)
            return True
        except HqRejected as exc:
            # 408: the link is too slow to carry this batch within HQ's body deadline. Smaller
            # batches get through; one event that still times out waits for the backoff.
            if exc.status != 408 or len(batch) == 1:
                raise
            self._batch = max(1, len(batch) // 2)
            log.warning("HQ timed out reading %d events; batch now %d", len(batch), self._batch)
            return True
        if not isinstance(answer.get("accepted"), int):
            raise HqBadAnswer("events answer lacks an integer 'accepted'")
        self._spool.ack([e.id for e in batch])
        self._batch = min(self._timing.batch_size, self._batch * 2)
        return self._spool.depth() > 0

    def _shrink_batch(self, batch: list[Event]) -> None:
        if len(batch) > 1:
            self._batch = max(1, len(batch) // 2)
            log.warning("HQ refused %d events as too large; batch now %d", len(batch), self._batch)
            return
        # A single event HQ will never accept: drop it, count it, and say so in the next heartbeat.
        log.error("event %s (%s) is too large for HQ; dropped", batch[0].id, batch[0].kind)
        self._spool.ack([batch[0].id])
        self._spool.count_losses({"too_large": 1})
