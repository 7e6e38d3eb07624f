"""An in-process keystore for tests: keys live in a process-global dict, keyed by slot name.

The key is kept as PKCS8 PEM bytes, like the real stores, so a round trip through it exercises
the same serialisation.
"""

from __future__ import annotations

import threading

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.keystore import key_from_pem, key_to_pem

_SLOTS: dict[str, bytes] = {}
_LOCK = threading.Lock()


def clear_memory_keystores() -> None:
    with _LOCK:
        _SLOTS.clear()


class MemoryStore:
    name = "memory"

    def __init__(self, slot: str = "device-key") -> None:
        self.slot = slot

    def load(self) -> Ed25519PrivateKey | None:
        with _LOCK:
            data = _SLOTS.get(self.slot)
        return None if data is None else key_from_pem(data, f"memory slot {self.slot!r}")

    def save(self, key: Ed25519PrivateKey) -> None:
        data = key_to_pem(key)
        with _LOCK:
            _SLOTS[self.slot] = data

    def delete(self) -> None:
        with _LOCK:
            _SLOTS.pop(self.slot, None)

    def check(self) -> None:
        return None
