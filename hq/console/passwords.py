"""Analyst passwords: argon2id hashes (argon2-cffi's RFC 9106 defaults), never the password itself."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 1024

_HASHER = PasswordHasher()


class WeakPassword(ValueError):
    pass


def check_strength(password: str) -> None:
    """Length is what matters for a password typed by a person; no composition rules."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"password: expected at least {MIN_LENGTH} characters, got {len(password)}")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"password: expected at most {MAX_LENGTH} characters")
    if password.strip() != password:
        raise WeakPassword("password: must not start or end with whitespace (a stray newline is a common mistake)")


def hash_password(password: str) -> str:
    check_strength(password)
    return _HASHER.hash(password)


def verify_password(encoded: str, password: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _HASHER.verify(encoded, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(encoded: str) -> bool:
    return _HASHER.check_needs_rehash(encoded)


@cache
def _dummy_hash() -> str:
    return _HASHER.hash("not-a-real-password-only-for-timing")


def burn_verify_time(password: str) -> None:
    """Spend what a real check costs, so an unknown analyst id answers as slowly as a wrong password."""
    verify_password(_dummy_hash(), password)
