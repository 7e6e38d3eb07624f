"""Each account's other-outlet query share: learned first, then judged hour by hour.

Learning counts the account's queries until it has ``learning_queries`` of them over at least
``learning_period_s``; the share of other-outlet waybills among them is its baseline and is then
frozen (an account slowly drifting into renting must not raise its own bar). The last hour is
kept in minute buckets, so memory per account is constant whatever the query rate. Learning
counters are flushed to the database; the hour window lives in memory only.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from agent.binding.policy import OtherOutletPolicy
from hq.binding.models import StaffBaseline
from hq.store.events import _insert

WINDOW_MINUTES = 60


@dataclass(slots=True)
class AccountQueries:
    staff_id: str
    first_query_at: float
    queries: int = 0
    other: int = 0
    learned_at: float | None = None
    share: float | None = None
    buckets: deque[list[int]] = field(default_factory=deque)  # [minute, queries, other]
    dirty: bool = True

    def window(self, minute: int) -> tuple[int, int]:
        while self.buckets and self.buckets[0][0] <= minute - WINDOW_MINUTES:
            self.buckets.popleft()
        return sum(b[1] for b in self.buckets), sum(b[2] for b in self.buckets)

    def count(self, minute: int, other: bool) -> None:
        if not self.buckets or self.buckets[-1][0] != minute:
            self.buckets.append([minute, 0, 0])
        self.buckets[-1][1] += 1
        self.buckets[-1][2] += int(other)


@dataclass(frozen=True)
class QueryStats:
    baseline_share: float | None
    window_queries: int
    window_other: int


class Baselines:
    def __init__(self, sessions: sessionmaker) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()
        with sessions() as session:
            rows = list(session.scalars(select(StaffBaseline)))
        self._accounts = {
            row.staff_id: AccountQueries(staff_id=row.staff_id, first_query_at=row.first_query_at,
                                         queries=row.queries, other=row.other_outlet, learned_at=row.learned_at,
                                         share=row.share, dirty=False)
            for row in rows
        }

    def record(self, staff_id: str, *, other: bool, now: float, policy: OtherOutletPolicy) -> QueryStats:
        with self._lock:
            account = self._accounts.get(staff_id)
            if account is None:
                account = self._accounts[staff_id] = AccountQueries(staff_id=staff_id, first_query_at=now)
            minute = int(now // 60)
            account.count(minute, other)
            if account.learned_at is None:
                account.queries += 1
                account.other += int(other)
                account.dirty = True
                learned = (account.queries >= policy.learning_queries
                           and now - account.first_query_at >= policy.learning_period_s)
                if learned:
                    account.learned_at = now
                    account.share = account.other / account.queries
            total, other_count = account.window(minute)
            return QueryStats(account.share, total, other_count)

    def flush(self) -> int:
        with self._lock:
            dirty = [a for a in self._accounts.values() if a.dirty]
            rows = [{"staff_id": a.staff_id, "first_query_at": a.first_query_at, "queries": a.queries,
                     "other_outlet": a.other, "learned_at": a.learned_at, "share": a.share,
                     "updated_at": a.first_query_at if a.learned_at is None else a.learned_at} for a in dirty]
            for account in dirty:
                account.dirty = False
        if not rows:
            return 0
        try:
            with self._sessions.begin() as session:
                stmt = _insert(session)(StaffBaseline).values(rows)
                stmt = stmt.on_conflict_do_update(index_elements=["staff_id"], set_={
                    name: stmt.excluded[name] for name in ("queries", "other_outlet", "learned_at", "share",
                                                           "updated_at")})
                session.execute(stmt)
        except Exception:
            with self._lock:
                for account in dirty:
                    account.dirty = True
            raise
        return len(rows)

    def forget_window(self, staff_id: str) -> None:
        """After an analyst cleared the account: judge from fresh queries, not the hour that was judged."""
        with self._lock:
            account = self._accounts.get(staff_id)
            if account is not None:
                account.buckets.clear()

    def stats(self, staff_id: str) -> AccountQueries | None:
        return self._accounts.get(staff_id)
