"""Buffered audit records, so a flood of forged requests never costs a transaction per request.

Records are coalesced in memory: identical ones (same action, reason, claimed device, source and
path) within one flush become one row with a count. The number of distinct records per flush is
bounded; past it, records are only counted and the count is stored as one overflow row.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy.orm import sessionmaker

from hq.store.audit import audit_row, insert_audit

OVERFLOW_ACTION = "audit_overflow"

_Key = tuple[str, str, str | None, str | None, str | None, str | None, str | None]


def _clip(value: str | None, limit: int) -> str | None:
    return value if value is None or len(value) <= limit else value[:limit]


class AuditBuffer:
    def __init__(self, *, max_entries: int) -> None:
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._pending: dict[_Key, dict[str, Any]] = {}
        self._overflow = 0
        self._overflow_at = 0.0

    def add(
        self,
        *,
        action: str,
        outcome: str,
        now: float,
        reason: str | None = None,
        device_id: str | None = None,
        remote_addr: str | None = None,
        path: str | None = None,
        detail: str | None = None,
    ) -> None:
        key: _Key = (
            action,
            outcome,
            reason,
            _clip(device_id, 64),
            _clip(remote_addr, 64),
            _clip(path, 255),
            _clip(detail, 1000),
        )
        with self._lock:
            row = self._pending.get(key)
            if row is not None:
                row["count"] += 1
                row["last_at"] = now
            elif len(self._pending) < self._max_entries:
                self._pending[key] = audit_row(
                    action=key[0],
                    outcome=key[1],
                    reason=key[2],
                    device_id=key[3],
                    remote_addr=key[4],
                    path=key[5],
                    detail=key[6],
                    at=now,
                )
            else:
                self._overflow += 1
                self._overflow_at = now

    def drain(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = list(self._pending.values())
            self._pending = {}
            if self._overflow:
                rows.append(
                    audit_row(
                        action=OVERFLOW_ACTION,
                        outcome="dropped",
                        detail=f"{self._overflow} audit records past the per-flush bound were only counted",
                        count=self._overflow,
                        at=self._overflow_at,
                    )
                )
                self._overflow = 0
        return rows

    def flush(self, sessions: sessionmaker) -> int:
        rows = self.drain()
        if rows:
            with sessions.begin() as session:
                insert_audit(session, records=rows)
        return len(rows)
