"""Request and response models. Requests and responses are separate classes, so nothing a
device sends (its enrollment token, its proof) can ever be echoed back by reusing a model.

Requests are strict (no "5" for 5) and bounded; unknown keys are ignored so newer agents can
add fields without breaking older HQs.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from agent.events import MAX_KIND_LENGTH

MAX_EVENTS_PER_BATCH = 500

Short = Annotated[str, StringConstraints(max_length=64)]
Name = Annotated[str, StringConstraints(max_length=255)]
Count = Annotated[int, Field(ge=0, le=2**62)]
Seconds = Annotated[float, Field(allow_inf_nan=False)]
SessionInfo = Annotated[str, StringConstraints(max_length=256)] | dict[Short, str | int | float | bool | None]


def _storable_body(body: dict[str, Any]) -> dict[str, Any]:
    """Refuse a lone UTF-16 surrogate ("\\udcff" in the JSON) in any string or key of the body.

    JSON lets a device send one, and Python and SQLite keep it, but PostgreSQL refuses it in
    JSONB: the insert would fail as a 500. Strict ``str`` fields already refuse them; a body's
    ``Any`` does not. A loop, not recursion: the body may be nested as deep as the JSON parser
    went, which leaves no room for a recursive walk on top.
    """
    pending: list[Any] = [body]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(
                    "a string or key holds a lone UTF-16 surrogate (not valid UTF-8), which HQ does not store"
                ) from None
        elif isinstance(value, dict):
            pending.extend(value)
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return body


StorableBody = Annotated[dict[str, Any], AfterValidator(_storable_body)]


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnrollIn(_Request):
    token: Annotated[str, StringConstraints(min_length=1, max_length=256)] = Field(repr=False)
    public_key: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    proof: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(repr=False)
    hostname: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    os: Name
    agent_version: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class EnrollOut(_Response):
    device_id: str
    outlet_id: str
    policy_public_key: str
    heartbeat_interval_s: float
    server_time: float


class HeartbeatIn(_Request):
    agent_version: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    policy_version: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    os_users: Annotated[list[Short], Field(max_length=64)] = []
    remote_sessions: Annotated[list[SessionInfo], Field(max_length=64)] = []
    staff: Short | None = None
    spool_depth: Count | None = None
    lost_events: Annotated[dict[Short, Count], Field(max_length=32)] = {}
    clock_offset_s: Seconds | None = None
    cpu_percent: Annotated[float, Field(ge=0, le=100_000, allow_inf_nan=False)] | None = None
    rss_bytes: Count | None = None
    interval_s: Annotated[float, Field(ge=1, le=86_400, allow_inf_nan=False)] | None = None
    hostname: Name | None = None
    os: Name | None = None

    def columns(self) -> dict[str, Any]:
        """The device columns this heartbeat sets (see hq.heartbeats.HEARTBEAT_COLUMNS)."""
        return {
            "agent_version": self.agent_version,
            "policy_version": self.policy_version,
            "interval_s": self.interval_s,
            "spool_depth": self.spool_depth,
            "staff": self.staff,
            "lost_events": dict(self.lost_events),
            "hostname": self.hostname,
            "os": self.os,
            "posture": {
                "os_users": list(self.os_users),
                "remote_sessions": list(self.remote_sessions),
                "clock_offset_s": self.clock_offset_s,
                "cpu_percent": self.cpu_percent,
                "rss_bytes": self.rss_bytes,
            },
        }


class HeartbeatOut(_Response):
    server_time: float
    policy_version: int
    heartbeat_interval_s: float


class EventIn(_Request):
    id: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
    kind: Annotated[str, StringConstraints(min_length=1, max_length=MAX_KIND_LENGTH)]
    priority: Annotated[int, Field(ge=0, le=3)]
    created: Seconds
    body: StorableBody


class EventsIn(_Request):
    events: list[EventIn]


class EventsOut(_Response):
    accepted: int
    duplicates: int
    server_time: float


class PolicyDocumentOut(_Response):
    version: int
    issued_at: str
    body: dict[str, Any]


class PolicyOut(_Response):
    policy: PolicyDocumentOut
    signature: str
    server_time: float


class UnenrollOut(_Response):
    device_id: str
    server_time: float


class ErrorOut(_Response):
    error: str
    detail: str
    server_time: float
