"""The device key in the OS keyring: Windows Credential Manager, Secret Service, macOS Keychain.

Stored as PKCS8 PEM text under service "terminal-guard", user "device-key". On a Windows
service running as LocalSystem that is the SYSTEM account's credential vault, out of reach of
the staff's own account.
"""

from __future__ import annotations

from pathlib import Path

import keyring
import keyring.backends.fail
import keyring.errors
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.keystore import KeystoreUnavailable, config_hint, key_from_pem, key_to_pem

SERVICE = "terminal-guard"
USERNAME = "device-key"


class KeyringStore:
    name = "keyring"

    def __init__(self, *, config_file: Path | None) -> None:
        self._config_file = config_file

    def _unavailable(self, reason: str) -> KeystoreUnavailable:
        return KeystoreUnavailable(
            f"{reason}; to keep the device key in a 0600 file instead, set "
            f'[keystore] backend = "file" in {config_hint(self._config_file)}'
        )

    def check(self) -> None:
        try:
            backend = keyring.get_keyring()
            priority = float(backend.priority)
        except Exception as exc:  # a broken keyring config or backend import raises anything
            raise self._unavailable(f"no OS keyring backend is available ({type(exc).__name__}: {exc})") from exc
        # The fail backend raises on every call; priority < 1 is keyring's own "not recommended"
        # mark (the null backend, an empty chainer): neither keeps a key.
        if isinstance(backend, keyring.backends.fail.Keyring) or priority < 1:
            raise self._unavailable(
                f"no OS keyring backend is available (keyring chose {type(backend).__module__}."
                f"{type(backend).__name__}, priority {priority:g})"
            )

    def load(self) -> Ed25519PrivateKey | None:
        self.check()
        try:
            text = keyring.get_password(SERVICE, USERNAME)
        except keyring.errors.KeyringError as exc:
            raise self._unavailable(f"the OS keyring refused to read the device key ({exc})") from exc
        if text is None:
            return None
        return key_from_pem(text.encode("ascii", "replace"), f"the OS keyring ({SERVICE}/{USERNAME})")

    def save(self, key: Ed25519PrivateKey) -> None:
        self.check()
        try:
            keyring.set_password(SERVICE, USERNAME, key_to_pem(key).decode("ascii"))
        except keyring.errors.KeyringError as exc:
            raise self._unavailable(f"the OS keyring refused to store the device key ({exc})") from exc

    def delete(self) -> None:
        self.check()
        try:
            keyring.delete_password(SERVICE, USERNAME)
        except keyring.errors.PasswordDeleteError:
            return  # nothing stored: deleting is idempotent
        except keyring.errors.KeyringError as exc:
            raise self._unavailable(f"the OS keyring refused to delete the device key ({exc})") from exc
