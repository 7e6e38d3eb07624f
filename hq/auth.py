"""Verification of signed device requests, in the order (and with the codes) of the wire contract.

Each failure is an AuthError carrying the claimed device id, so the caller can audit it. The hot
path (a device already in memory) does no I/O: a cached public key, a timestamp window, one
Ed25519 verification, a nonce lookup and a sequence compare.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Iterable, Mapping

import anyio.to_thread

from agent.signing import SignatureError, SignedHeaders, parse_signed_headers, verify_request
from hq.heartbeats import LiveDevice, LiveState

BAD_SIGNATURE = "bad_signature"
UNKNOWN_DEVICE = "unknown_device"
DEVICE_REVOKED = "device_revoked"
STALE_TIMESTAMP = "stale_timestamp"
REPLAYED = "replayed"


class AuthError(Exception):
    def __init__(self, code: str, detail: str, device_id: str | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.device_id = device_id


class ReplayCache:
    """Nonces seen within the timestamp window, expired by the second of their request's timestamp.

    A nonce is refused a second time whatever timestamp comes with it. Entries expire when their
    timestamp leaves the window, so the cache holds at most one window of traffic. If it still
    hits its bound, the oldest second is dropped and becomes the horizon: requests stamped at or
    before it are refused, because they could no longer be told apart from replays.
    """

    def __init__(self, *, window_s: float, max_entries: int,
                 key: Callable[[str, str], int] | None = None) -> None:
        self._window_s = window_s
        self._max_entries = max_entries
        # A 64-bit keyed hash, not the nonce itself: a fraction of the memory, and a collision
        # (odds ~1e-12 at a full window of 100,000 PCs) only costs one retried request. Python's
        # own hash is keyed per process; a cache saved across restarts needs a key of its own.
        self._key = key if key is not None else lambda device_id, nonce: hash((device_id, nonce))
        self._seen: set[int] = set()
        self._buckets: dict[int, list[int]] = {}
        self._order: list[int] = []
        self._horizon = -1
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, device_id: str, nonce: str, *, timestamp: int, now: float) -> bool:
        """Remember a nonce; False if it was already seen (or is too old to be judged)."""
        key = self._key(device_id, nonce)
        with self._lock:
            self._expire(now)
            if timestamp <= self._horizon or key in self._seen:
                return False
            self._seen.add(key)
            bucket = self._buckets.get(timestamp)
            if bucket is None:
                bucket = self._buckets[timestamp] = []
                heapq.heappush(self._order, timestamp)
            bucket.append(key)
            while len(self._seen) > self._max_entries:
                self._horizon = self._drop_oldest()
            return True

    def snapshot(self, now: float) -> dict[int, list[int]]:
        """The keys still inside the window, by the second they were stamped (for `restore`)."""
        with self._lock:
            self._expire(now)
            return {second: list(keys) for second, keys in self._buckets.items()}

    def restore(self, buckets: Iterable[tuple[int, list[int]]], now: float) -> int:
        """Take back a snapshot made with the same key function; returns how many keys were kept."""
        with self._lock:
            for second, keys in buckets:
                if second < now - self._window_s or second <= self._horizon:
                    continue
                fresh = [key for key in keys if key not in self._seen]
                if not fresh:
                    continue
                self._seen.update(fresh)
                if second not in self._buckets:
                    self._buckets[second] = []
                    heapq.heappush(self._order, second)
                self._buckets[second].extend(fresh)
            while len(self._seen) > self._max_entries:
                self._horizon = self._drop_oldest()
            return len(self._seen)

    def _expire(self, now: float) -> None:
        # A request stamped t is accepted until now > t + window, so its nonce is needed until then.
        while self._order and self._order[0] < now - self._window_s:
            self._drop_oldest()

    def _drop_oldest(self) -> int:
        second = heapq.heappop(self._order)
        self._seen.difference_update(self._buckets.pop(second))
        return second


class RequestVerifier:
    def __init__(self, *, live: LiveState, replay: ReplayCache, max_past_s: float, max_future_s: float) -> None:
        self._live = live
        self._replay = replay
        self._max_past_s = max_past_s
        self._max_future_s = max_future_s

    async def verify(
        self, *, headers: Mapping[str, str], method: str, path: str, body: bytes, now: float
    ) -> LiveDevice:
        try:
            signed = parse_signed_headers(headers)
        except SignatureError as exc:
            raise AuthError(BAD_SIGNATURE, str(exc), _claimed(headers)) from None
        device = self._live.get(signed.device_id)
        if device is None:
            device = await anyio.to_thread.run_sync(self._live.load, signed.device_id)
        if device is None:
            raise AuthError(UNKNOWN_DEVICE, "no device is enrolled with this id", signed.device_id)
        self.check(device, signed, method=method, path=path, body=body, now=now)
        return device

    def check(
        self, device: LiveDevice, signed: SignedHeaders, *, method: str, path: str, body: bytes, now: float
    ) -> None:
        if device.revoked:
            raise AuthError(DEVICE_REVOKED, "this device was revoked; enroll it again", device.device_id)
        if not now - self._max_past_s <= signed.timestamp <= now + self._max_future_s:
            raise AuthError(
                STALE_TIMESTAMP,
                f"timestamp {signed.timestamp} is outside [server_time - {self._max_past_s:.0f} s, "
                f"server_time + {self._max_future_s:.0f} s]; correct the clock offset with server_time",
                device.device_id,
            )
        try:
            verify_request(device.public_key, signed, method=method, path=path, body=body)
        except SignatureError as exc:
            raise AuthError(BAD_SIGNATURE, str(exc), device.device_id) from None
        if not self._replay.add(device.device_id, signed.nonce, timestamp=signed.timestamp, now=now):
            raise AuthError(REPLAYED, "this nonce was already used", device.device_id)
        last = self._live.accept_seq(device, signed.seq)
        if last is not None:
            raise AuthError(
                REPLAYED, f"seq {signed.seq} is not greater than the last accepted seq {last}", device.device_id
            )


def _claimed(headers: Mapping[str, str]) -> str | None:
    value = headers.get("x-tg-device") or headers.get("X-TG-Device")
    return value[:64] if value else None
