from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import keyring
import keyring.backend
import keyring.backends.fail
import keyring.backends.null
import keyring.errors
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.keystore import KeystoreUnavailable
from agent.keystore.keyring_store import SERVICE, USERNAME, KeyringStore

K = TypeVar("K", bound=keyring.backend.KeyringBackend)


class DictKeyring(keyring.backend.KeyringBackend):
    """A real keyring backend (keyring's plugin interface) that keeps secrets in a dict."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[tuple[str, str], str] = {}
        self.locked = False

    def get_password(self, service: str, username: str) -> str | None:
        if self.locked:
            raise keyring.errors.KeyringLocked("collection is locked")
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        if self.locked:
            raise keyring.errors.PasswordSetError("collection is locked")
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.secrets[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError("not found") from None


# Defining a backend registers it for keyring's own discovery; keep it to the tests that set it.
keyring.backend.KeyringBackend._classes.discard(DictKeyring)


class BrokenPriority(keyring.backend.KeyringBackend):
    @property
    def priority(self) -> float:
        raise RuntimeError("dbus is not running")

    def get_password(self, service: str, username: str) -> str | None:
        raise AssertionError("must not be called")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise AssertionError("must not be called")


keyring.backend.KeyringBackend._classes.discard(BrokenPriority)


@pytest.fixture(autouse=True)
def restore_keyring() -> Iterator[None]:
    previous = keyring.get_keyring()
    yield
    keyring.set_keyring(previous)


def use_keyring(backend: K) -> K:
    keyring.set_keyring(backend)
    return backend


def raw(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())


def test_fail_backend_is_unavailable_and_names_the_setting(tmp_path: Path) -> None:
    use_keyring(keyring.backends.fail.Keyring())
    config_file = tmp_path / "agent.toml"
    store = KeyringStore(config_file=config_file)
    with pytest.raises(KeystoreUnavailable) as caught:
        store.check()
    message = str(caught.value)
    assert message.startswith("no OS keyring backend is available")
    assert f'set [keystore] backend = "file" in {config_file}' in message
    for operation in (store.load, store.delete, lambda: store.save(Ed25519PrivateKey.generate())):
        with pytest.raises(KeystoreUnavailable, match=r'\[keystore\] backend = "file"'):
            operation()


def test_without_a_config_file_the_message_still_says_where() -> None:
    use_keyring(keyring.backends.fail.Keyring())
    expected = r"in the agent config file \(agent.toml, or the file given with --config\)"
    with pytest.raises(KeystoreUnavailable, match=expected):
        KeyringStore(config_file=None).check()


def test_null_backend_with_negative_priority_is_unavailable() -> None:
    use_keyring(keyring.backends.null.Keyring())
    with pytest.raises(KeystoreUnavailable, match=r"priority -1"):
        KeyringStore(config_file=None).check()


def test_backend_whose_priority_raises_is_unavailable() -> None:
    use_keyring(BrokenPriority())
    with pytest.raises(KeystoreUnavailable, match="dbus is not running"):
        KeyringStore(config_file=None).check()


def test_round_trip_through_a_real_backend() -> None:
    backend = use_keyring(DictKeyring())
    store = KeyringStore(config_file=None)
    store.check()
    assert store.load() is None
    key = Ed25519PrivateKey.generate()
    store.save(key)
    stored = backend.secrets[(SERVICE, USERNAME)]
    assert (SERVICE, USERNAME) == ("terminal-guard", "device-key")
    assert stored.startswith("-----BEGIN PRIVATE KEY-----\n")
    loaded = store.load()
    assert loaded is not None and raw(loaded) == raw(key)
    store.delete()
    assert store.load() is None
    store.delete()  # deleting nothing is fine


def test_damaged_secret_says_to_re_enroll() -> None:
    backend = use_keyring(DictKeyring())
    backend.secrets[(SERVICE, USERNAME)] = "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n"
    with pytest.raises(KeystoreUnavailable, match=r"OS keyring \(terminal-guard/device-key\).*enroll --force"):
        KeyringStore(config_file=None).load()


def test_locked_keyring_is_reported_not_swallowed() -> None:
    backend = use_keyring(DictKeyring())
    backend.locked = True
    store = KeyringStore(config_file=None)
    with pytest.raises(KeystoreUnavailable, match=r"refused to read the device key.*collection is locked"):
        store.load()
    with pytest.raises(KeystoreUnavailable, match="refused to store the device key"):
        store.save(Ed25519PrivateKey.generate())
