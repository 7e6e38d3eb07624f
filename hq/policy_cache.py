"""The latest signed policy, held in memory: heartbeats and GET /v1/policy never touch the database.

A policy published by the CLI (another process) is picked up by the periodic refresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import sessionmaker

from hq.store.policies import latest_policy, latest_version, policy_document


@dataclass(frozen=True)
class ServedPolicy:
    version: int
    document: dict[str, Any]
    signature: str


class PolicyCache:
    def __init__(self, sessions: sessionmaker) -> None:
        self._sessions = sessions
        self.current = self._load()

    def _load(self) -> ServedPolicy:
        with self._sessions() as session:
            record = latest_policy(session)
        if record is None:
            raise RuntimeError("no policy is stored; create_app publishes the default one first")
        return ServedPolicy(version=record.version, document=policy_document(record), signature=record.signature)

    def refresh(self) -> bool:
        """Reload if a newer version was published; True when it changed."""
        with self._sessions() as session:
            version = latest_version(session)
        if version is None or version == self.current.version:
            return False
        self.current = self._load()
        return True
