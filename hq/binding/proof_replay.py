"""The proofs verify has seen, kept across a clean HQ restart.

The replay cache lives in memory, so without this a proof captured in the last minute (the
policy's proof window) could be presented again to a freshly restarted HQ and be allowed. On a
clean stop the cache's keys go to a file in the data folder; the next start takes back those
still inside the window and deletes the file. The keys are 64-bit BLAKE2b digests of
(device, jti) under a key derived from the session key, so the file holds no proof and is the
same on every HQ process sharing the data folder. A crash (kill -9, power loss) loses the
file's update: the gap is then one proof window (docs/binding.md).
A damaged or foreign file is logged and ignored, never fatal.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from pathlib import Path

from hq.auth import ReplayCache
from hq.tls import write_private

log = logging.getLogger(__name__)

REPLAY_FILE = "proof-replay.json"
FORMAT = 1
_LABEL = b"terminal-guard proof replay cache v1"


def replay_key(session_key: bytes) -> Callable[[str, str], int]:
    """A keyed 64-bit digest of (device, jti), stable across processes sharing the session key."""
    secret = hmac.new(session_key, _LABEL, hashlib.sha256).digest()[:32]

    def key(device_id: str, jti: str) -> int:
        digest = hashlib.blake2b(f"{device_id}\n{jti}".encode("utf-8", "surrogatepass"), key=secret, digest_size=8)
        return int.from_bytes(digest.digest(), "big")

    return key


def save(cache: ReplayCache, data_dir: Path, now: float) -> int:
    """Write the keys still inside the window, with those of a file another HQ process sharing the
    data folder saved before (a console replica stopping later must not drop them); returns how many."""
    # No earlier file, or one not worth keeping: this process's keys alone.
    with contextlib.suppress(OSError, ValueError):
        cache.restore(_parse((data_dir / REPLAY_FILE).read_bytes()), now)
    buckets = cache.snapshot(now)
    document = {"format": FORMAT, "saved_at": now, "buckets": [[second, keys] for second, keys in buckets.items()]}
    write_private(data_dir / REPLAY_FILE, json.dumps(document, separators=(",", ":")).encode("ascii"))
    return sum(map(len, buckets.values()))


def load(cache: ReplayCache, data_dir: Path, now: float) -> int:
    """Take back a saved cache and delete the file; returns how many keys the cache holds then."""
    path = data_dir / REPLAY_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        log.warning("%s: cannot read the saved proof cache (%s); proofs of the last minute are not known",
                    path, exc)
        return 0
    try:
        buckets = _parse(raw)
    except ValueError as exc:
        log.warning("%s: ignored (%s); proofs of the last minute are not known", path, exc)
        buckets = []
    path.unlink(missing_ok=True)  # used once: a later crash must not bring back an old cache
    return cache.restore(buckets, now)


def _parse(raw: bytes) -> list[tuple[int, list[int]]]:
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"expected an object with format {FORMAT}")
    buckets = document.get("buckets")
    if not isinstance(buckets, list):
        raise ValueError("buckets: expected a list of [second, [keys]]")
    parsed: list[tuple[int, list[int]]] = []
    for index, item in enumerate(buckets):
        if (not isinstance(item, list) or len(item) != 2 or not _is_int(item[0]) or not isinstance(item[1], list)
                or not all(_is_int(key) and 0 <= key < 1 << 64 for key in item[1])):
            raise ValueError(f"buckets[{index}]: expected [second, [64-bit keys]]")
        parsed.append((item[0], item[1]))
    return parsed


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
