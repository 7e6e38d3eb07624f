"""Analyst roles: each one may do what the ones below it may, and more."""

from __future__ import annotations

VIEWER = "viewer"  # reads every page
ANALYST = "analyst"  # + triages alerts, revokes devices, suspends / clears staff bindings
ADMIN = "admin"  # + enrollment tokens and policy publishing
ROLES = (VIEWER, ANALYST, ADMIN)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role: expected one of {', '.join(ROLES)}, got {role!r}")
    return role


def allows(role: str, needed: str) -> bool:
    """True when ``role`` is at least ``needed``; an unknown role allows nothing."""
    if role not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(needed)
