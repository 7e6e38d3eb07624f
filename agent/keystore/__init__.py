"""Where the device's private key lives: the OS keyring by default, a 0600 file only by choice.

The device key is the PC's identity towards HQ, so losing it means re-enrolling and leaking it
means someone else can be this PC. There is deliberately no silent fallback from the keyring
to a file: when the keyring cannot be used the agent stops with ``KeystoreUnavailable``, whose
message names the exact setting that fixes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config import KEYSTORE_BACKENDS, KeystoreConfig


class KeystoreUnavailable(RuntimeError):
    """The configured keystore cannot be used; the message says what to configure or do."""


class Keystore(Protocol):
    name: str

    def load(self) -> Ed25519PrivateKey | None: ...

    def save(self, key: Ed25519PrivateKey) -> None: ...

    def delete(self) -> None: ...

    def check(self) -> None: ...


def config_hint(config_file: Path | None) -> str:
    """Where a setting has to go, for error messages."""
    return str(config_file) if config_file else "the agent config file (agent.toml, or the file given with --config)"


def key_to_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def key_from_pem(data: bytes, where: str) -> Ed25519PrivateKey:
    """Parse a stored key; a damaged or foreign key says so and how to recover."""
    fix = "remove it and enroll again (terminal-guard enroll --force)"
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeystoreUnavailable(f"the device key in {where} is not a readable PKCS8 PEM key ({exc}); {fix}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeystoreUnavailable(f"the device key in {where} is a {type(key).__name__}, not Ed25519; {fix}")
    return key


def open_keystore(config: KeystoreConfig, *, config_file: Path | None) -> Keystore:
    """The keystore ``config`` asks for. It is not checked here: call ``check()`` to find out."""
    if config.backend == "keyring":
        from agent.keystore.keyring_store import KeyringStore

        return KeyringStore(config_file=config_file)
    if config.backend == "file":
        from agent.keystore.file_store import FileStore

        if config.file_path is None:
            hint = config_hint(config_file)
            raise KeystoreUnavailable(f'[keystore] backend = "file" needs [keystore] file_path in {hint}')
        return FileStore(config.file_path, config_file=config_file)
    if config.backend == "memory":
        from agent.keystore.memory_store import MemoryStore

        return MemoryStore(str(config.file_path) if config.file_path else "device-key")
    raise KeystoreUnavailable(
        f"unknown [keystore] backend {config.backend!r} in {config_hint(config_file)}; "
        f"expected one of {', '.join(KEYSTORE_BACKENDS)}"
    )


__all__ = ["Keystore", "KeystoreUnavailable", "key_from_pem", "key_to_pem", "open_keystore"]
