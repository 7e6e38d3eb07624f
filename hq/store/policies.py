"""Signed policies: every version is kept; publishing validates the body and signs it once."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from agent.policy import parse_policy_body
from agent.signing import canonical_json, sign_document
from hq.db import PolicyRecord


def policy_document(record: PolicyRecord) -> dict[str, Any]:
    """The exact document that was signed: what GET /v1/policy serves and agents verify."""
    document: dict[str, Any] = json.loads(record.document)
    return document


def latest_version(session: Session) -> int | None:
    return session.scalar(select(func.max(PolicyRecord.version)))


def latest_policy(session: Session) -> PolicyRecord | None:
    return session.scalar(select(PolicyRecord).order_by(PolicyRecord.version.desc()).limit(1))


def publish_policy(session: Session, *, body: Any, key: Ed25519PrivateKey, now: float) -> PolicyRecord:
    """Validate ``body`` (PolicyError names the field), sign it as version last + 1 and store it.

    The version is the primary key, so two concurrent publishers cannot both take the same number:
    the second commit fails instead of silently forking the policy.
    """
    parse_policy_body(body)
    version = (latest_version(session) or 0) + 1
    issued_at = dt.datetime.fromtimestamp(now, dt.UTC).isoformat().replace("+00:00", "Z")
    document = {"version": version, "issued_at": issued_at, "body": body}
    record = PolicyRecord(
        version=version,
        issued_at=issued_at,
        document=canonical_json(document).decode("utf-8"),
        signature=sign_document(key, document),
    )
    session.add(record)
    session.flush()
    return record


def ensure_default_policy(session: Session, *, key: Ed25519PrivateKey, now: float) -> PolicyRecord:
    """Version 1 with an empty body (every default of agent.policy) if nothing was published yet."""
    existing = latest_policy(session)
    if existing is not None:
        return existing
    return publish_policy(session, body={}, key=key, now=now)
