"""A finding: a rule's judgement on an observation, in the ECS-style shape of `scan --json`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent.events import SEVERITY_PRIORITY, Event
from agent.redact import redact, redact_optional
from agent.sensors.observations import ProcessInfo

SEVERITIES = ("low", "medium", "high", "critical")
CATEGORIES = ("automation", "scripting", "interception", "remote_access", "tunnel", "export", "sharing")


@dataclass(frozen=True)
class Finding:
    rule: str
    title: str
    severity: str
    category: str
    # Flattened ECS-style keys: "process.pid", "file.path", "pii.counts", "rows" ...
    fields: dict[str, Any] = field(default_factory=dict)
    observed_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity: expected one of {SEVERITIES}, got {self.severity!r}")
        if self.category not in CATEGORIES:
            raise ValueError(f"category: expected one of {CATEGORIES}, got {self.category!r}")

    def to_dict(self) -> dict[str, Any]:
        stamp = datetime.fromtimestamp(self.observed_at, UTC).isoformat().replace("+00:00", "Z")
        return {
            "@timestamp": stamp,
            "rule": self.rule,
            "title": self.title,
            "severity": self.severity,
            "category": self.category,
            **self.fields,
        }

    def to_event(self) -> Event:
        return Event(kind="finding", body=self.to_dict(), priority=SEVERITY_PRIORITY[self.severity])


def process_finding_fields(proc: ProcessInfo | None, parent: ProcessInfo | None = None) -> dict[str, Any]:
    """ECS-style fields naming a process (and its parent) in a finding, personal data redacted.

    Rules match on the raw command line (rules/fields.py); a finding leaves the PC, so what it
    carries goes through `redact` first: a tool started with a customer's phone number or a file
    named after one still shows as the tool, with ``<phone>`` in place of the number.
    """
    return {
        "process.pid": proc.pid if proc else None,
        "process.start": proc.create_time if proc else None,  # unix time; tells a reused pid apart
        "process.name": redact(proc.name) if proc else None,
        "process.executable": redact_optional(proc.exe) if proc else None,
        "process.command_line": redact(proc.command_line) if proc else None,
        "process.parent.name": redact(parent.name) if parent else None,
        "process.parent.executable": redact_optional(parent.exe) if parent else None,
    }
