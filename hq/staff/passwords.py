"""Staff password hashing: argon2id from argon2-cffi (memory-hard, maintained), nothing home-made.

Verification of an unknown staff id still spends one argon2 verification on a fixed dummy hash,
so the answer time does not tell which staff ids exist.
"""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 256

# RFC 9106's second recommended option (t=3, 64 MiB, p=4): ~50 ms on one outlet-class core.
_HASHER = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4)


class PasswordError(ValueError):
    """A password that is not acceptable as a new password (length)."""


def check_new_password(password: str) -> None:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise PasswordError(
            f"password: expected {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters, got {len(password)}"
        )


def hash_password(password: str) -> str:
    check_new_password(password)
    return _HASHER.hash(password)


def is_password_hash(text: str) -> bool:
    """Whether ``text`` is an argon2 PHC string argon2-cffi can verify against (for CSV imports)."""
    if not text.startswith("$argon2id$"):
        return False
    try:
        extract_parameters(text)
    except InvalidHashError:
        return False
    return True


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _HASHER.hash("not-a-password-of-anyone")


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; an unknown account (None) costs the same time and is False."""
    if len(password) > MAX_PASSWORD_CHARS:
        password = password[:MAX_PASSWORD_CHARS + 1]  # still verified (and refused), at a bounded cost
    try:
        return _HASHER.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True
