"""Counting distinct values without keeping them: keyed 64-bit digests in a bounded set.

Each value is reduced to a 64-bit keyed hash under a key drawn at random once per process and
held only in memory, so the set can neither be reversed nor matched against a dictionary of phone
numbers by anyone who reads memory dumps or core files later without the key.

The keyed hash is Python's own string hash: SipHash-1-3 under the interpreter's random per-process
secret, computed in C. It was HMAC-SHA256 truncated to 64 bits, which gives the same guarantees
here (a secret key in memory, 64 bits kept) and was a third of a whole scan's time. When hash
randomization is off (PYTHONHASHSEED set to a number), the string hash is no longer keyed, and the
HMAC is used instead.

Memory is bounded by adaptive distinct sampling (Wegman; Gibbons 2001): the set keeps at most
``capacity`` digests; when it overflows, only digests below a halved bound are kept and the
estimate is ``len(set) << level``. Below the capacity the count is exact.
"""

from __future__ import annotations

import hashlib
import secrets
import sys
from collections.abc import Iterable

_BLOCK = 64  # SHA-256 block size
_MASK = (1 << 64) - 1


def _pads(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """HMAC (RFC 2104) inner and outer states, so each value costs two copies, not a key setup."""
    padded = key.ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in padded))
    outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in padded))
    return inner, outer


_INNER, _OUTER = _pads(secrets.token_bytes(32))

DEFAULT_CAPACITY = 1 << 16  # ~4 MB per counted kind at most; exact below 65,536 distinct values
_SPACE = 1 << 64


def hmac_digests(values: Iterable[str]) -> list[int]:
    """The first 64 bits of HMAC-SHA256(process key, value), as numbers."""
    inner_copy, outer_copy = _INNER.copy, _OUTER.copy
    digests: list[int] = []
    append = digests.append
    for value in values:
        inner = inner_copy()
        inner.update(value.encode("utf-8", "surrogatepass"))
        outer = outer_copy()
        outer.update(inner.digest())
        append(int.from_bytes(outer.digest()[:8], "big"))
    return digests


def siphash_digests(values: Iterable[str]) -> list[int]:
    """Python's keyed string hash of each value, as an unsigned 64-bit number (all in C)."""
    return [digest & _MASK for digest in map(hash, values)]


keyed_digests = siphash_digests if sys.flags.hash_randomization else hmac_digests


class DistinctCounter:
    """Distinct count of the values added: exact up to ``capacity``, a sampled estimate beyond."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 2:
            raise ValueError(f"capacity: expected at least 2, got {capacity}")
        self._capacity = capacity
        self._digests: set[int] = set()
        self._level = 0
        self._bound: int | None = None  # keep digests below this; None: keep all

    def add_many(self, values: Iterable[str]) -> None:
        bound = self._bound
        unique = set(values)  # duplicates within a batch cost one hash
        if bound is None:
            self._digests.update(keyed_digests(unique))
        else:
            self._digests.update(digest for digest in keyed_digests(unique) if digest < bound)
        if len(self._digests) > self._capacity:
            self._shrink()

    def _shrink(self) -> None:
        while len(self._digests) > self._capacity:
            self._level += 1
            bound = _SPACE >> self._level
            self._digests = {digest for digest in self._digests if digest < bound}
            self._bound = bound

    @property
    def estimated(self) -> bool:
        return self._level > 0

    def count(self) -> int:
        return len(self._digests) << self._level
