"""One PC's heartbeat timeline: when it was beating, silent or revoked, and its agent starts and stops.

HQ keeps each PC's latest heartbeat, not every beat (a row per beat would be the busiest table
at fleet scale); the timeline is rebuilt from the transitions HQ records (silent, back online,
revoked) and the agent's own start/stop events.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from hq.db import Device, StoredEvent
from hq.timefmt import strftime_at

SILENT = "alert.device_silent"
BACK_ONLINE = "device.back_online"
ENDS = ("device.revoked", "device.unenrolled")
MARKS = ("agent.started", "agent.stopped")
KINDS = (SILENT, BACK_ONLINE, *ENDS, *MARKS)

STATE_AFTER = {SILENT: "silent", BACK_ONLINE: "online", **{kind: "revoked" for kind in ENDS}}
STATE_BEFORE = {SILENT: "online", BACK_ONLINE: "silent"}


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    state: str  # online / silent / revoked / absent (before enrollment)


@dataclass(frozen=True)
class Mark:
    at: float
    kind: str


def device_timeline(
    session: Session, *, device: Device, status_now: str, now: float, hours: float = 24.0
) -> tuple[list[Segment], list[Mark]]:
    start = now - hours * 3600.0
    rows = session.execute(
        select(StoredEvent.received_at, StoredEvent.kind)
        .where(StoredEvent.device_id == device.id, StoredEvent.kind.in_(KINDS), StoredEvent.received_at > start)
        .order_by(StoredEvent.received_at)
    ).all()
    marks = [Mark(at, kind) for at, kind in rows if kind in MARKS]
    changes = [(at, kind) for at, kind in rows if kind in STATE_AFTER]
    if changes:
        first_kind = changes[0][1]
        state = STATE_BEFORE.get(first_kind, "online")
    else:
        state = status_now
    segments: list[Segment] = []
    cursor = start
    if device.enrolled_at > start:
        segments.append(Segment(start, device.enrolled_at, "absent"))
        cursor = device.enrolled_at
    for at, kind in changes:
        if at > cursor:
            segments.append(Segment(cursor, at, state))
        cursor = max(cursor, at)
        state = STATE_AFTER[kind]
    if device.revoked_at is not None and device.revoked_at > cursor:
        segments.append(Segment(cursor, device.revoked_at, state))
        cursor, state = device.revoked_at, "revoked"
    segments.append(Segment(cursor, now, state))
    return segments, marks


def timeline_svg(
    segments: list[Segment], marks: list[Mark], *, now: float, hours: float = 24.0, utc_offset_s: float = 0.0,
    width: int = 1200, height: int = 60,
) -> Markup:
    left, right, bar_top, bar_h = 10, 10, 8, 24
    plot_w = width - left - right
    start = now - hours * 3600.0

    def x(at: float) -> float:
        return left + plot_w * (min(max(at, start), now) - start) / (now - start)

    def when(at: float) -> str:
        return strftime_at(at, "%m-%d %H:%M", offset_s=utc_offset_s)

    parts = []
    for seg in segments:
        w = max(x(seg.end) - x(seg.start), 0.5)
        parts.append(
            f'<rect class="tl-{seg.state}" x="{x(seg.start):.1f}" y="{bar_top}" width="{w:.1f}" height="{bar_h}">'
            f"<title>{seg.state} {when(seg.start)} – {when(seg.end)}</title></rect>"
        )
    for mark in marks:
        mx = x(mark.at)
        parts.append(
            f'<path class="tl-mark" d="M{mx:.1f},{bar_top + bar_h + 2} l-4,8 h8 z">'
            f"<title>{html.escape(mark.kind)} {when(mark.at)}</title></path>"
        )
    for i in range(5):
        at = start + i * (now - start) / 4
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        parts.append(f'<text class="tick" x="{x(at):.1f}" y="{height - 4}" text-anchor="{anchor}">{when(at)}</text>')
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart timeline" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="heartbeat timeline, last {hours:.0f} hours">'
    )
    return Markup(head + "".join(parts) + "</svg>")  # noqa: S704 - kinds are escaped, the rest are numbers
