"""Where each SIEM sink got to in the events table, and which HQ process holds the right to send."""

from __future__ import annotations

from sqlalchemy import BigInteger, Double, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hq.db import Base


class SiemCursor(Base):
    __tablename__ = "siem_cursors"

    # The sink's name (its URL without credentials): a new sink starts from its own cursor.
    sink: Mapped[str] = mapped_column(String(255), primary_key=True)
    last_pk: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    updated_at: Mapped[float] = mapped_column(Double)
    # With several HQ replicas one forwarder holds the lease at a time, so nothing is sent twice.
    lease_owner: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_until: Mapped[float | None] = mapped_column(Double, default=None)
