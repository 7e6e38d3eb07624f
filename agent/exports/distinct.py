"""Counting distinct values without keeping them: keyed digests in a bounded set.

Each value is reduced to the first 8 bytes of HMAC-SHA256 under a key drawn at random once per
process and held only in memory, so the set can neither be reversed nor matched against a
dictionary of phone numbers by anyone who reads memory dumps or core files later without the key.

Memory is bounded by adaptive distinct sampling (Wegman; Gibbons 2001): the set keeps at most
``capacity`` digests; when it overflows, only digests below a halved bound are kept and the
estimate is ``len(set) << level``. Below the capacity the count is exact.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

_BLOCK = 64  # SHA-256 block size


def _pads(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """HMAC (RFC 2104) inner and outer states, so each value costs two copies, not a key setup."""
    padded = key.ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in padded))
    outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in padded))
    return inner, outer


_INNER, _OUTER = _pads(secrets.token_bytes(32))

DEFAULT_CAPACITY = 1 << 16  # ~5 MB per counted kind at most; exact below 65,536 distinct values
_SPACE = 1 << 64


def keyed_digest(value: str) -> bytes:
    """The first 64 bits of HMAC-SHA256(process key, value); compared as big-endian numbers."""
    return keyed_digests((value,))[0]


def keyed_digests(values: Iterable[str]) -> list[bytes]:
    """`keyed_digest` for many values: the hot loop of a scan, so lookups are hoisted."""
    inner_copy, outer_copy = _INNER.copy, _OUTER.copy
    digests: list[bytes] = []
    append = digests.append
    for value in values:
        inner = inner_copy()
        inner.update(value.encode("utf-8", "surrogatepass"))
        outer = outer_copy()
        outer.update(inner.digest())
        append(outer.digest()[:8])
    return digests


class DistinctCounter:
    """Distinct count of the values added: exact up to ``capacity``, a sampled estimate beyond."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 2:
            raise ValueError(f"capacity: expected at least 2, got {capacity}")
        self._capacity = capacity
        self._digests: set[bytes] = set()
        self._level = 0
        self._bound: bytes | None = None  # keep digests below this (8-byte big-endian); None: keep all

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
            bound = (_SPACE >> self._level).to_bytes(8, "big")
            self._digests = {digest for digest in self._digests if digest < bound}
            self._bound = bound

    @property
    def estimated(self) -> bool:
        return self._level > 0

    def count(self) -> int:
        return len(self._digests) << self._level
