"""HQ settings: one frozen record built by the CLI (or a test) and handed to create_app."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DATA_DIR_ENV = "TG_HQ_DATA_DIR"
DEFAULT_DATA_DIR = "hq-data"
DEFAULT_PORT = 8443
DEFAULT_SILENT_AFTER_S = 60.0


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def default_db_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir.resolve() / 'hq.sqlite3'}"


def normalize_db_url(url: str) -> str:
    """Point plain PostgreSQL URLs at the psycopg 3 driver that HQ ships with."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@dataclass(frozen=True)
class Settings:
    db_url: str
    data_dir: Path
    # A device is silent once its last heartbeat is older than its interval plus this.
    silent_after_s: float = DEFAULT_SILENT_AFTER_S
    # Registers GET /v1/noop, the unauthenticated ceiling the benchmark compares against.
    bench_noop: bool = False
    # Requests in flight above this get 429 + Retry-After; None means no limit.
    max_inflight: int | None = None
    # The interval HQ suggests to agents, and assumes for devices that never reported their own
    # (the agent's configuration decides its real interval and reports it in each heartbeat).
    heartbeat_interval_s: float = 10.0
    # Heartbeat state and buffered audit records reach the database this often.
    flush_interval_s: float = 1.0
    # The accepted window of a signed request's timestamp around the server clock.
    max_past_s: float = 300.0
    max_future_s: float = 60.0
    # Bounds of the nonce replay cache (entries), the audit buffer (distinct records per flush).
    replay_cache_entries: int = 2_000_000
    audit_buffer_entries: int = 10_000
    # Where events go as ECS JSON lines (syslog+udp://, syslog+tcp://, http(s)://); None: nowhere.
    siem_url: str | None = None
    silence_check_s: float | None = field(default=None)

    @property
    def silence_period_s(self) -> float:
        """How often the silent monitor looks: often enough to be timely, rarely enough to be cheap."""
        if self.silence_check_s is not None:
            return self.silence_check_s
        return min(5.0, max(0.2, self.silent_after_s / 4))
