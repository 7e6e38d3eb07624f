"""The CLI's database commands: each returns the lines (or JSON objects) it prints."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.orm import sessionmaker

from agent.policy import PolicyError
from agent.signing import SignatureError, verify_document
from hq.db import AuditRecord, Device, StoredEvent
from hq.policy_keys import load_policy_key
from hq.store.audit import OUTCOME_OK, list_audit, record_audit
from hq.store.devices import device_status, list_devices, revoke_device
from hq.store.events import list_events
from hq.store.policies import latest_policy, policy_document, publish_policy
from hq.store.tokens import create_token
from hq.timefmt import iso

MAX_POLICY_FILE_BYTES = 4 * 1024 * 1024

# What a terminal acts on or reorders instead of printing: C0 controls, DEL, C1 (U+009B is a CSI
# on its own), the bidi embeddings/overrides/isolates (an RLO turns "slx.exe" into "exe.xls"), and
# lone surrogates, which the UTF-8 stdout cannot encode at all. Devices report file names,
# command lines, host names and kinds: the operator must see them, not have them acted on.
_UNSHOWN = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# Inside JSON text the same characters can only sit within strings, where \uNNNN means the same.
_UNSHOWN_IN_JSON = re.compile(r"[\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def shown(text: str) -> str:
    """``text`` with every character a terminal would act on written as a visible escape."""
    return _UNSHOWN.sub(_escape, text)


def json_line(record: dict[str, Any]) -> str:
    """One JSON object for --json: the same data, with nothing a terminal would act on left raw."""
    return _UNSHOWN_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(record, ensure_ascii=False))


class CommandError(RuntimeError):
    """A problem the operator can fix; printed to stderr, exit code 2."""


def token_create(sessions: sessionmaker, *, outlet_id: str, uses: int, ttl_s: float) -> list[str]:
    if not outlet_id.strip() or len(outlet_id) > 64:
        raise CommandError("--outlet: expected an outlet id of 1 to 64 characters")
    now = time.time()
    try:
        with sessions.begin() as session:
            token = create_token(session, outlet_id=outlet_id, uses=uses, ttl_s=ttl_s, now=now)
            record_audit(
                session, action="token_create", outcome=OUTCOME_OK, at=now, detail=f"outlet {outlet_id}, {uses} use(s)"
            )
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    return [f"outlet {outlet_id}, {uses} use(s), expires {iso(now + ttl_s)}", token]


def device_record(device: Device, *, now: float, silent_after_s: float, default_interval_s: float) -> dict[str, Any]:
    return {
        "device_id": device.id,
        "outlet_id": device.outlet_id,
        "status": device_status(
            device, now=now, silent_after_s=silent_after_s, default_interval_s=default_interval_s
        ),
        "last_heartbeat": iso(device.last_heartbeat),
        "heartbeat_count": device.heartbeat_count,
        "agent_version": device.agent_version,
        "policy_version": device.policy_version,
        "hostname": device.hostname,
        "os": device.os,
        "staff": device.staff,
        "spool_depth": device.spool_depth,
        "lost_events": device.lost_events or {},
        "interval_s": device.interval_s,
        "enrolled_at": iso(device.enrolled_at),
        "revoked_at": iso(device.revoked_at),
        "revoked_reason": device.revoked_reason,
        "posture": device.posture or {},
    }


def devices(sessions: sessionmaker, *, silent_after_s: float, default_interval_s: float) -> list[dict[str, Any]]:
    now = time.time()
    with sessions() as session:
        rows = list_devices(session)
    return [
        device_record(row, now=now, silent_after_s=silent_after_s, default_interval_s=default_interval_s)
        for row in rows
    ]


DEVICE_COLUMNS = (
    ("device_id", 36),
    ("outlet_id", 14),
    ("status", 8),
    ("last_heartbeat", 20),
    ("heartbeat_count", 9),
    ("agent_version", 9),
    ("policy_version", 6),
    ("hostname", 16),
    ("lost_events", 0),
)


def device_table(records: list[dict[str, Any]]) -> Iterator[str]:
    headers = ("DEVICE", "OUTLET", "STATUS", "LAST HEARTBEAT", "BEATS", "AGENT", "POLICY", "HOSTNAME", "LOST")
    yield "  ".join(h.ljust(width) for h, (_, width) in zip(headers, DEVICE_COLUMNS, strict=True)).rstrip()
    for record in records:
        cells = []
        for name, width in DEVICE_COLUMNS:
            value = record[name]
            if name == "lost_events":
                text = ",".join(f"{k}={v}" for k, v in sorted(value.items())) or "-"
            else:
                text = "-" if value is None else str(value)
            cells.append(shown(text).ljust(width))
        yield "  ".join(cells).rstrip()


def revoke(sessions: sessionmaker, *, device_id: str) -> str:
    now = time.time()
    with sessions.begin() as session:
        try:
            revoked = revoke_device(session, device_id=device_id, reason="revoked by HQ", now=now)
        except LookupError as exc:
            raise CommandError(f"--device: {exc}") from None
        if revoked:
            record_audit(session, action="revoke", outcome=OUTCOME_OK, at=now, device_id=device_id)
    if not revoked:
        return f"device {device_id} was already revoked"
    return f"revoked device {device_id}; its requests are refused within a few seconds"


def event_record(event: StoredEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "device_id": event.device_id,
        "kind": event.kind,
        "priority": event.priority,
        "origin": event.origin,
        "created": iso(event.created),
        "received_at": iso(event.received_at),
        "body": event.body,
    }


def events(
    sessions: sessionmaker, *, since: float | None, kind: str | None, device_id: str | None, limit: int
) -> list[dict[str, Any]]:
    with sessions() as session:
        rows = list_events(session, since=since, kind=kind, device_id=device_id, limit=limit)
    return [event_record(row) for row in rows]


def event_line(record: dict[str, Any]) -> str:
    body = json.dumps(record["body"], ensure_ascii=False, sort_keys=True)
    if len(body) > 120:
        body = body[:117] + "..."
    return shown(
        f"{record['received_at']}  {record['device_id']}  {record['origin']:<5}  p{record['priority']}  "
        f"{record['kind']}  {body}"
    )


def audit_record(row: AuditRecord) -> dict[str, Any]:
    return {
        "at": iso(row.at),
        "last_at": iso(row.last_at),
        "action": row.action,
        "outcome": row.outcome,
        "reason": row.reason,
        "device_id": row.device_id,
        "remote_addr": row.remote_addr,
        "path": row.path,
        "detail": row.detail,
        "count": row.count,
    }


def audit(sessions: sessionmaker, *, since: float | None, limit: int) -> list[dict[str, Any]]:
    with sessions() as session:
        rows = list_audit(session, since=since, limit=limit)
    return [audit_record(row) for row in rows]


def audit_line(record: dict[str, Any]) -> str:
    parts = [str(record["at"]), record["action"], record["outcome"]]
    for name in ("reason", "device_id", "remote_addr", "path", "detail"):
        if record[name]:
            parts.append(f"{name}={record[name]}")
    if record["count"] > 1:
        parts.append(f"x{record['count']} until {record['last_at']}")
    return shown("  ".join(parts))


def _read_policy_body(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CommandError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_POLICY_FILE_BYTES:
        raise CommandError(f"{path}: {len(raw)} bytes; a policy body is at most {MAX_POLICY_FILE_BYTES} bytes")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CommandError(f"{path}: not valid JSON: {exc}") from None


def policy_publish(sessions: sessionmaker, *, data_dir: Path, path: Path) -> str:
    body = _read_policy_body(path)
    try:
        key = load_policy_key(data_dir)
    except (OSError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    now = time.time()
    with sessions.begin() as session:
        current = latest_policy(session)
        if current is not None:
            # A key from the wrong --data-dir would sign policies every agent refuses.
            try:
                verify_document(key.public_key(), policy_document(current), current.signature)
            except SignatureError:
                raise CommandError(
                    f"{data_dir / 'policy-key.pem'}: this key did not sign policy version {current.version}; "
                    "use the --data-dir of the running HQ"
                ) from None
        try:
            record = publish_policy(session, body=body, key=key, now=now)
        except PolicyError as exc:
            raise CommandError(f"{path}: {exc}") from None
        record_audit(session, action="policy_publish", outcome=OUTCOME_OK, at=now, detail=f"version {record.version}")
    return f"published policy version {record.version}"


def policy_show(sessions: sessionmaker) -> dict[str, Any]:
    with sessions() as session:
        record = latest_policy(session)
    if record is None:
        raise CommandError("no policy yet: `terminal-guard-hq serve` publishes version 1 on first start")
    return {"policy": policy_document(record), "signature": record.signature}
