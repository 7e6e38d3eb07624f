"""The staff and gateway-key CLI commands: each returns the lines (or JSON objects) it prints."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy.orm import sessionmaker

from agent.events import PRIORITY_HIGH, PRIORITY_MEDIUM
from hq.binding.models import StaffMember
from hq.binding.store import create_gateway_key, gateway_key_rows, list_acks, list_sessions, revoke_gateway_key
from hq.commands import CommandError
from hq.sharing.respond import NO_DEVICE
from hq.staff.csv_import import StaffFileError, read_staff_csv
from hq.staff.passwords import PasswordError, hash_password
from hq.staff.store import StaffError, add_staff, clear_staff, get_staff, list_staff, set_disabled, suspend_staff
from hq.store.audit import OUTCOME_OK, record_audit
from hq.store.events import record_hq_event
from hq.timefmt import iso


def _located(exc: Exception) -> CommandError:
    text = str(exc)
    return CommandError(f"--{text}" if isinstance(exc, StaffError) and text.split(":")[0] in (
        "id", "outlet", "name") else text)


def staff_add(sessions: sessionmaker, *, staff_id: str, outlet_id: str, name: str, password: str) -> str:
    try:
        password_hash = hash_password(password)
    except PasswordError as exc:
        raise CommandError(f"{exc} (read from stdin)") from None
    now = time.time()
    try:
        with sessions.begin() as session:
            add_staff(session, staff_id=staff_id, outlet_id=outlet_id, name=name, password_hash=password_hash, now=now)
            record_audit(session, action="staff_add", outcome=OUTCOME_OK, at=now,
                         detail=f"staff {staff_id}, outlet {outlet_id}")
    except StaffError as exc:
        raise _located(exc) from None
    return f"added staff {staff_id} (outlet {outlet_id})"


def staff_import(sessions: sessionmaker, *, path: Path) -> list[str]:
    """All rows or none: a file with one bad row changes nothing."""
    try:
        rows = read_staff_csv(path)
    except StaffFileError as exc:
        raise CommandError(str(exc)) from None
    now = time.time()
    hashes = {row.staff_id: row.password_hash or hash_password(row.password or "") for row in rows}
    with sessions.begin() as session:
        for row in rows:
            if get_staff(session, staff_id=row.staff_id) is not None:
                raise CommandError(f"{path}:{row.line}: id: staff {row.staff_id} already exists; nothing imported")
            add_staff(session, staff_id=row.staff_id, outlet_id=row.outlet_id, name=row.name,
                      password_hash=hashes[row.staff_id], now=now)
        record_audit(session, action="staff_import", outcome=OUTCOME_OK, at=now,
                     detail=f"{len(rows)} staff from {path.name}")
    plaintext = any(row.password is not None for row in rows)
    lines = [f"imported {len(rows)} staff from {path}"]
    if plaintext:
        lines.append(f"{path} holds plain passwords: delete it now")
    return lines


def _change(sessions: sessionmaker, staff_id: str, action: str, change: Any) -> bool:
    now = time.time()
    try:
        with sessions.begin() as session:
            changed = bool(change(session, now))
            if changed:
                record_audit(session, action=action, outcome=OUTCOME_OK, at=now, detail=f"staff {staff_id} by CLI")
    except StaffError as exc:
        raise _located(exc) from None
    return changed


def staff_disable(sessions: sessionmaker, *, staff_id: str, disabled: bool = True) -> str:
    changed = _change(sessions, staff_id, "staff_disable" if disabled else "staff_enable",
                      lambda session, now: set_disabled(session, staff_id=staff_id, disabled=disabled, now=now))
    word = "disabled" if disabled else "enabled"
    return f"staff {staff_id} {word}" if changed else f"staff {staff_id} was already {word}"


def staff_suspend(sessions: sessionmaker, *, staff_id: str, reason: str) -> str:
    def change(session: Any, now: float) -> bool:
        done = suspend_staff(session, staff_id=staff_id, reason=reason, now=now)
        if done:
            record_hq_event(session, device_id=NO_DEVICE, kind="staff.suspended",
                            body={"staff_id": staff_id, "by": "cli", "reason": reason}, now=now,
                            priority=PRIORITY_HIGH)
        return done

    if not _change(sessions, staff_id, "staff_suspend", change):
        return f"staff {staff_id} was already suspended"
    return f"suspended staff {staff_id}: verify denies their sessions everywhere within a second"


def staff_clear(sessions: sessionmaker, *, staff_id: str) -> str:
    def change(session: Any, now: float) -> bool:
        done = clear_staff(session, staff_id=staff_id, now=now)
        if done:
            record_hq_event(session, device_id=NO_DEVICE, kind="staff.cleared",
                            body={"staff_id": staff_id, "by": "cli"}, now=now, priority=PRIORITY_MEDIUM)
        return done

    if not _change(sessions, staff_id, "staff_clear", change):
        return f"staff {staff_id} was neither suspended nor locked"
    return f"cleared staff {staff_id}: suspension and lockout lifted"


def staff_record(member: StaffMember) -> dict[str, Any]:
    return {"staff_id": member.id, "outlet_id": member.outlet_id, "name": member.name, "status": member.status,
            "suspended_at": iso(member.suspended_at), "suspended_reason": member.suspended_reason,
            "locked_until": iso(member.locked_until), "created_at": iso(member.created_at)}


def staff_list(sessions: sessionmaker, *, outlet_id: str | None) -> list[dict[str, Any]]:
    with sessions() as session:
        return [staff_record(m) for m in list_staff(session, outlet_id=outlet_id)]


def staff_line(record: dict[str, Any]) -> str:
    state = "suspended" if record["suspended_at"] else record["status"]
    if record["locked_until"]:
        state += f" (locked until {record['locked_until']})"
    return f"{record['staff_id']:<16} {record['outlet_id']:<14} {state:<10} {record['name']}"


def staff_sessions(sessions: sessionmaker, *, staff_id: str | None, limit: int) -> list[dict[str, Any]]:
    with sessions() as session:
        rows = list_sessions(session, staff_id=staff_id, limit=limit)
    return [{"session_id": r.id, "staff_id": r.staff_id, "device_id": r.device_id, "outlet_id": r.outlet_id,
             "issued_at": iso(r.issued_at), "expires_at": iso(r.expires_at), "ended_at": iso(r.ended_at),
             "end_reason": r.end_reason} for r in rows]


def staff_acks(sessions: sessionmaker, *, staff_id: str | None, limit: int) -> list[dict[str, Any]]:
    with sessions() as session:
        rows = list_acks(session, staff_id=staff_id, limit=limit)
    return [{"staff_id": r.staff_id, "policy_hash": r.policy_hash, "policy_version": r.policy_version,
             "device_id": r.device_id, "outlet_id": r.outlet_id, "acknowledged_at": iso(r.acknowledged_at),
             "received_at": iso(r.received_at)} for r in rows]


def gateway_key_create(sessions: sessionmaker, *, name: str) -> list[str]:
    if not name.strip() or len(name) > 64:
        raise CommandError("--name: expected a gateway name of 1 to 64 characters")
    now = time.time()
    with sessions.begin() as session:
        key = create_gateway_key(session, name=name, now=now)
        record_audit(session, action="gateway_key_create", outcome=OUTCOME_OK, at=now, detail=f"gateway {name}")
    return [f"gateway key for {name!r}; it is shown only now (send it as X-TG-Gateway-Key)", key]


def gateway_key_revoke(sessions: sessionmaker, *, name: str) -> str:
    now = time.time()
    with sessions.begin() as session:
        count = revoke_gateway_key(session, name=name, now=now)
        if count:
            record_audit(session, action="gateway_key_revoke", outcome=OUTCOME_OK, at=now, detail=f"gateway {name}")
    if not count:
        raise CommandError(f"--name: no active gateway key named {name!r}")
    return f"revoked {count} key(s) of gateway {name!r}"


def gateway_key_list(sessions: sessionmaker) -> list[dict[str, Any]]:
    with sessions() as session:
        rows = gateway_key_rows(session)
    return [{"name": r["name"], "created_at": iso(r["created_at"]), "revoked_at": iso(r["revoked_at"])} for r in rows]
