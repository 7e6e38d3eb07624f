"""The staff facts verify needs, held in memory: outlet, disabled, suspended.

Verify runs on the event loop and must not touch the database, so every staff member's facts are
loaded at start and kept current by polling ``changed_at`` (a few times a second: a suspension
made with the CLI in another process takes effect well within a second). A suspension decided by
this process (a sharing alert) is applied here first, before it is written.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from hq.binding.models import STAFF_ACTIVE, StaffMember
from hq.staff.store import changed_since

# Rows changed in a transaction that committed after the previous poll began are caught by
# looking back this far (clock steps between processes are covered too).
POLL_OVERLAP_S = 5.0


@dataclass(frozen=True, slots=True)
class StaffFacts:
    staff_id: str
    outlet_id: str
    active: bool
    suspended: bool


def facts_of(member: StaffMember) -> StaffFacts:
    return StaffFacts(staff_id=member.id, outlet_id=member.outlet_id, active=member.status == STAFF_ACTIVE,
                      suspended=member.suspended_at is not None)


class StaffDirectory:
    def __init__(self, sessions: sessionmaker, on_cleared: Callable[[str], None] | None = None) -> None:
        self._sessions = sessions
        # Told when a suspension is lifted (an analyst's clear), so detection starts afresh.
        self._on_cleared = on_cleared
        self._facts: dict[str, StaffFacts] = {}
        # Suspensions applied in memory, by when: a poll that reads a row older than that (the
        # write not yet committed) must not lift them again.
        self._pinned: dict[str, float] = {}
        self._lock = threading.Lock()
        self._polled_at = time.time()
        self._load_all()

    def _load_all(self) -> None:
        columns = (StaffMember.id, StaffMember.outlet_id, StaffMember.status, StaffMember.suspended_at)
        with self._sessions() as session:
            rows = session.execute(select(*columns)).all()
        self._facts = {
            row[0]: StaffFacts(staff_id=row[0], outlet_id=row[1], active=row[2] == STAFF_ACTIVE,
                               suspended=row[3] is not None)
            for row in rows
        }

    def get(self, staff_id: str) -> StaffFacts | None:
        return self._facts.get(staff_id)

    def put(self, facts: StaffFacts) -> None:
        with self._lock:
            self._facts[facts.staff_id] = facts

    def suspend_now(self, staff_id: str, *, now: float) -> None:
        """Deny at once; the database write follows."""
        with self._lock:
            self._pinned[staff_id] = now
            current = self._facts.get(staff_id)
            if current is not None:
                self._facts[staff_id] = StaffFacts(current.staff_id, current.outlet_id, current.active, True)

    def poll(self) -> int:
        started = time.time()
        with self._sessions() as session:
            changed = changed_since(session, since=self._polled_at - POLL_OVERLAP_S)
            updates = [(facts_of(member), member.changed_at) for member in changed]
        self._polled_at = started
        cleared = []
        with self._lock:
            for facts, changed_at in updates:
                pinned = self._pinned.get(facts.staff_id)
                if pinned is not None and not facts.suspended and changed_at < pinned:
                    continue  # our own suspension is not written yet
                self._pinned.pop(facts.staff_id, None)
                before = self._facts.get(facts.staff_id)
                if before is not None and before.suspended and not facts.suspended:
                    cleared.append(facts.staff_id)
                self._facts[facts.staff_id] = facts
        for staff_id in cleared:
            if self._on_cleared is not None:
                self._on_cleared(staff_id)
        return len(updates)

    def __len__(self) -> int:
        return len(self._facts)
