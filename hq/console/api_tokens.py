"""Bearer tokens for machines (Prometheus): made by the CLI, stored as SHA-256, checked per request."""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hq.console.tables import ApiToken

SCOPE_METRICS = "metrics"
SCOPES = (SCOPE_METRICS,)
PREFIX = "tgm_"  # recognisable in a secret scanner's findings
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_api_token(session: Session, *, name: str, scope: str, now: float) -> str:
    if not _NAME.match(name):
        raise ValueError(f"--name: expected 1 to 64 letters, digits or . _ - (starting with a letter or digit), "
                         f"got {name!r:.80}")
    if scope not in SCOPES:
        raise ValueError(f"--scope: expected one of {', '.join(SCOPES)}, got {scope!r}")
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(token_hash=_hash(token), name=name, scope=scope, created_at=now))
    return token


def check_api_token(session: Session, *, token: str, scope: str) -> str | None:
    """The token's name if it is valid for ``scope``, else None."""
    if not token.startswith(PREFIX) or len(token) > 128:
        return None
    row = session.get(ApiToken, _hash(token))
    if row is None or row.revoked_at is not None or row.scope != scope:
        return None
    return row.name


def list_api_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.created_at)))


def revoke_api_tokens(session: Session, *, name: str, now: float) -> int:
    result = session.execute(
        update(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None)).values(revoked_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
