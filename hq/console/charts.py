"""Charts drawn on the server as inline SVG: alerts per day by category, silent PCs over time.

The data functions are plain queries; the drawing functions return markup built with every label
escaped, so the page needs no script and no chart library (and the CSP allows no inline script).
Colours come from CSS classes (cat-<category>), so the stylesheet owns the palette.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass

from markupsafe import Markup
from sqlalchemy import Integer, cast, func, or_, select
from sqlalchemy.orm import Session

from hq.console.alerts import CATEGORIES, DEVICE_SILENT, alert_condition, category_of
from hq.db import Device, StoredEvent
from hq.store.events import ORIGIN_HQ

DAY_S = 86400.0
BACK_ONLINE = "device.back_online"


@dataclass(frozen=True)
class DayCounts:
    day_start: float  # unix seconds of the day's first second, in the console's time zone
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _day_index(session: Session, utc_offset_s: float) -> object:
    shifted = (StoredEvent.received_at + utc_offset_s) / DAY_S
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(shifted), Integer)
    return cast(shifted, Integer)  # SQLite's CAST truncates, which is floor for times after 1970


def alerts_per_day(session: Session, *, now: float, days: int = 14, utc_offset_s: float = 0.0) -> list[DayCounts]:
    """Alerts received per day for the last ``days`` days (today included), by category."""
    today = int((now + utc_offset_s) // DAY_S)
    first = today - days + 1
    since = first * DAY_S - utc_offset_s
    day = _day_index(session, utc_offset_s).label("day")  # type: ignore[attr-defined]
    category = StoredEvent.body["category"].as_string().label("category")
    stmt = (
        select(day, StoredEvent.kind, category, func.count())
        .where(alert_condition(), StoredEvent.received_at >= since)
        .group_by(day, StoredEvent.kind, category)
    )
    buckets = {index: dict.fromkeys(CATEGORIES, 0) for index in range(first, today + 1)}
    for index, kind, body_category, count in session.execute(stmt):
        if index in buckets:
            name = category_of(kind, {"category": body_category})
            buckets[index][name] += int(count)
    return [DayCounts(index * DAY_S - utc_offset_s, counts) for index, counts in sorted(buckets.items())]


def silent_over_time(
    session: Session, *, now: float, hours: int = 168, step_s: float = 3600.0
) -> list[tuple[float, int]]:
    """(time, PCs silent then) from ``hours`` ago to now, one point per ``step_s``.

    Worked backwards from the PCs silent now, undoing each silence and back-online transition
    HQ recorded in the window; revoked PCs stop counting from their revocation.
    """
    silent_now = set(session.scalars(select(Device.id).where(Device.silent.is_(True))))
    revoked: dict[str, float] = {
        device_id: at
        for device_id, at in session.execute(select(Device.id, Device.revoked_at).where(Device.revoked_at.is_not(None)))
        if at is not None
    }
    start = now - hours * 3600.0
    transitions = session.execute(
        select(StoredEvent.received_at, StoredEvent.kind, StoredEvent.device_id)
        .where(
            StoredEvent.origin == ORIGIN_HQ,
            or_(StoredEvent.kind == DEVICE_SILENT, StoredEvent.kind == BACK_ONLINE),
            StoredEvent.received_at > start,
        )
        .order_by(StoredEvent.received_at.desc())
    ).all()
    points: list[tuple[float, int]] = []
    current = set(silent_now)
    index = 0
    steps = int(hours * 3600.0 // step_s)
    for step in range(steps + 1):
        at = now - step * step_s
        while index < len(transitions) and transitions[index][0] > at:
            _, kind, device_id = transitions[index]
            if kind == DEVICE_SILENT:
                current.discard(device_id)
            else:
                current.add(device_id)
            index += 1
        live = sum(1 for device_id in current if device_id not in revoked or revoked[device_id] > at)
        points.append((at, live))
    return points[::-1]


def _label(ts: float, utc_offset_s: float, fmt: str) -> str:
    return dt.datetime.fromtimestamp(ts + utc_offset_s, dt.UTC).strftime(fmt)


def _nice_max(value: int) -> int:
    for nice in (5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000):
        if value <= nice:
            return nice
    return value


def _svg(width: int, height: int, label: str, parts: list[str]) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{html.escape(label)}">'
    )
    return Markup(head + "".join(parts) + "</svg>")  # noqa: S704 - every label above is escaped


def stacked_bars(days: list[DayCounts], *, utc_offset_s: float = 0.0, width: int = 720, height: int = 240) -> Markup:
    left, right, top, bottom = 40, 10, 10, 60
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = _nice_max(max((d.total for d in days), default=0))
    slot = plot_w / max(len(days), 1)
    parts = [
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}"/>',
        f'<text class="tick" x="{left - 6}" y="{top + 4}" text-anchor="end">{top_value}</text>',
        f'<text class="tick" x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    for i, day in enumerate(days):
        x = left + i * slot + slot * 0.15
        y = float(top + plot_h)
        label = _label(day.day_start, utc_offset_s, "%m-%d")
        for name in CATEGORIES:
            count = day.counts.get(name, 0)
            if not count:
                continue
            h = plot_h * count / top_value
            y -= h
            parts.append(
                f'<rect class="cat-{name}" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}">'
                f"<title>{html.escape(label)}: {count} {html.escape(name)}</title></rect>"
            )
        if (len(days) - 1 - i) % 2 == 0 or len(days) <= 8:  # every other day, today always
            parts.append(
                f'<text class="tick" x="{x + slot * 0.35:.1f}" y="{top + plot_h + 14}" text-anchor="middle">'
                f"{html.escape(label)}</text>"
            )
    used = [name for name in CATEGORIES if any(day.counts.get(name) for day in days)]
    for i, name in enumerate(used):
        lx = left + (i % 5) * 130
        ly = height - 30 + (i // 5) * 16
        parts.append(f'<rect class="cat-{name}" x="{lx}" y="{ly - 9}" width="10" height="10"/>')
        parts.append(f'<text class="legend" x="{lx + 14}" y="{ly}">{html.escape(name)}</text>')
    if not used:
        parts.append(f'<text class="empty" x="{width / 2}" y="{top + plot_h / 2}" text-anchor="middle">'
                     "no alerts in this period</text>")
    return _svg(width, height, "alerts per day by category", parts)


def line_chart(
    points: list[tuple[float, int]], *, label: str, utc_offset_s: float = 0.0, width: int = 720, height: int = 200
) -> Markup:
    left, right, top, bottom = 40, 10, 10, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = _nice_max(max((count for _, count in points), default=0))
    if len(points) < 2:
        return _svg(width, height, label, [])
    t0, t1 = points[0][0], points[-1][0]
    span = max(t1 - t0, 1.0)

    def xy(at: float, count: int) -> str:
        return f"{left + plot_w * (at - t0) / span:.1f},{top + plot_h - plot_h * count / top_value:.1f}"

    line = " ".join(xy(at, count) for at, count in points)
    area = f"{left},{top + plot_h} {line} {left + plot_w},{top + plot_h}"
    parts = [
        f'<polygon class="area" points="{area}"/>',
        f'<polyline class="line" points="{line}"/>',
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}"/>',
        f'<text class="tick" x="{left - 6}" y="{top + 4}" text-anchor="end">{top_value}</text>',
        f'<text class="tick" x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    day_marks = int(span // DAY_S)
    for i in range(day_marks + 1):
        at = t1 - i * DAY_S
        x = left + plot_w * (at - t0) / span
        anchor = "end" if i == 0 else "middle"
        parts.append(f'<text class="tick" x="{x:.1f}" y="{height - 10}" text-anchor="{anchor}">'
                     f"{html.escape(_label(at, utc_offset_s, '%m-%d %H:%M'))}</text>")
    peak_at, peak = max(points, key=lambda p: p[1])
    peak_label = html.escape(_label(peak_at, utc_offset_s, "%m-%d %H:%M"))
    parts.append(f"<title>{html.escape(label)}: peak {peak} at {peak_label}, now {points[-1][1]}</title>")
    return _svg(width, height, label, parts)
