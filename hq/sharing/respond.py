"""The response to a sharing alert, as the policy says: alert only, or suspend the staff member.

A suspension is applied in memory at once (verify denies from the next request on) and then
written; the alert becomes an HQ event ``alert.sharing.<rule>`` with its evidence, and every
decision (alert, suspend, or a repeat folded into an earlier alert) goes to the audit trail.
Writes happen on the binding writer thread, never on the verify path.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from agent.events import PRIORITY_CRITICAL, PRIORITY_HIGH
from hq.audit_log import AuditBuffer
from hq.binding.memory import PolicyView
from hq.sharing.rules import SharingAlert
from hq.staff.directory import StaffDirectory
from hq.staff.store import suspend_staff
from hq.store.events import record_hq_event

log = logging.getLogger(__name__)

NO_DEVICE = "-"
MAX_QUEUED = 100_000

Write = Callable[[Session], None]


class WriteQueue:
    """Database writes queued by the hot path and done in one transaction by the writer thread."""

    def __init__(self, sessions: sessionmaker) -> None:
        self._sessions = sessions
        self._queue: deque[Write] = deque()
        self.dropped = 0

    def put(self, write: Write) -> None:
        if len(self._queue) >= MAX_QUEUED:
            self.dropped += 1
            return
        self._queue.append(write)

    def flush(self) -> int:
        writes: list[Write] = []
        while self._queue:
            writes.append(self._queue.popleft())
        if not writes:
            return 0
        try:
            with self._sessions.begin() as session:
                for write in writes:
                    write(session)
        except Exception:
            log.exception("binding writes failed as a batch; retrying them one by one")
            return self._one_by_one(writes)
        return len(writes)

    def _one_by_one(self, writes: list[Write]) -> int:
        """After a failed batch: each write alone, so one bad write cannot hold back the others."""
        done = 0
        for index, write in enumerate(writes):
            try:
                with self._sessions.begin() as session:
                    write(session)
                done += 1
            except Exception as exc:
                if not isinstance(exc, ValueError):
                    # The database itself is failing: keep the rest, in order, for the next flush.
                    self._queue.extendleft(reversed(writes[index:]))
                    raise
                self.dropped += 1
                log.error("binding write dropped: %s", exc)
        return done


class Responder:
    def __init__(self, *, policy: PolicyView, directory: StaffDirectory, audit: AuditBuffer,
                 writes: WriteQueue) -> None:
        self._policy = policy
        self._directory = directory
        self._audit = audit
        self._writes = writes
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str | None, str | None, str], float] = {}
        self.raised = 0

    def __call__(self, alert: SharingAlert) -> str | None:
        """Act on one alert; returns the response taken, or None when it repeats a recent alert."""
        sharing = self._policy.body.sharing
        key = (alert.rule, alert.staff, alert.device, alert.facet)
        with self._lock:
            last = self._last.get(key)
            if last is not None and alert.at - last < sharing.realert_s:
                repeat = True
            else:
                repeat = False
                self._last[key] = alert.at
                if len(self._last) > 100_000:
                    self._last.clear()
        response = alert.response or sharing.response(alert.rule)
        if response == "suspend":
            facts = self._directory.get(alert.staff) if alert.staff else None
            if facts is None:
                response = "alert"  # nobody in the directory to suspend (a PC alert, an unknown account)
            elif not facts.suspended:
                self._directory.suspend_now(facts.staff_id, now=alert.at)
                self._writes.put(_suspension(alert))
                repeat = False  # a new suspension is always recorded, even inside a repeat window
        self._audit.add(action="sharing_alert", outcome=response if not repeat else "repeat", reason=alert.rule,
                        device_id=alert.device, detail=f"staff {alert.staff}" if alert.staff else None, now=alert.at)
        if repeat:
            return None
        self.raised += 1
        log.warning("sharing alert %s (staff %s, device %s): %s", alert.rule, alert.staff, alert.device, response)
        self._writes.put(_event(alert, response))
        return response


def _body(alert: SharingAlert, response: str) -> dict[str, Any]:
    return {"rule": alert.rule, "staff_id": alert.staff, "device_id": alert.device, "outlet_id": alert.outlet,
            "response": response, "at": alert.at, "evidence": alert.evidence}


def _event(alert: SharingAlert, response: str) -> Write:
    def write(session: Session) -> None:
        record_hq_event(session, device_id=alert.device or NO_DEVICE, kind=f"alert.sharing.{alert.rule}",
                        body=_body(alert, response), now=alert.at,
                        priority=PRIORITY_CRITICAL if response == "suspend" else PRIORITY_HIGH)

    return write


def _suspension(alert: SharingAlert) -> Write:
    def write(session: Session) -> None:
        assert alert.staff is not None
        if suspend_staff(session, staff_id=alert.staff, reason=f"sharing alert {alert.rule}", now=alert.at):
            record_hq_event(session, device_id=alert.device or NO_DEVICE, kind="staff.suspended",
                            body={"staff": alert.staff, "rule": alert.rule, "by": "policy"}, now=alert.at,
                            priority=PRIORITY_CRITICAL)

    return write
