"""The event record that flows sensor/respond -> spool -> uplink -> HQ."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

# Spool eviction drops the lowest priority first; findings carry their severity's priority.
PRIORITY_LOW = 0
PRIORITY_MEDIUM = 1
PRIORITY_HIGH = 2
PRIORITY_CRITICAL = 3
SEVERITY_PRIORITY = {
    "low": PRIORITY_LOW,
    "medium": PRIORITY_MEDIUM,
    "high": PRIORITY_HIGH,
    "critical": PRIORITY_CRITICAL,
}

MAX_KIND_LENGTH = 64


def new_event_id() -> str:
    """A UUIDv7-shaped id: time-ordered, so HQ indexes stay append-mostly."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= (rand >> 68 & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


@dataclass(frozen=True)
class Event:
    kind: str
    body: dict[str, Any]
    priority: int = PRIORITY_MEDIUM
    created: float = field(default_factory=time.time)
    id: str = field(default_factory=new_event_id)

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "priority": self.priority,
            "created": self.created,
            "body": self.body,
        }

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Event:
        return cls(
            id=str(data["id"]),
            kind=str(data["kind"]),
            priority=int(data["priority"]),
            created=float(data["created"]),
            body=dict(data["body"]),
        )
