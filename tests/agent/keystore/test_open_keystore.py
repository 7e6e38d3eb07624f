from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config import KeystoreConfig, load_config
from agent.keystore import KeystoreUnavailable, open_keystore
from agent.keystore.file_store import FileStore
from agent.keystore.keyring_store import KeyringStore
from agent.keystore.memory_store import MemoryStore, clear_memory_keystores
from agent.platform.fake import FakePlatform


@pytest.fixture(autouse=True)
def empty_memory_keystores() -> Iterator[None]:
    clear_memory_keystores()
    yield
    clear_memory_keystores()


def public(key: Ed25519PrivateKey | None) -> bytes:
    assert key is not None
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def test_each_backend_name_opens_its_store(tmp_path: Path) -> None:
    opened = {
        backend: open_keystore(KeystoreConfig(backend=backend, file_path=tmp_path / "k.pem"), config_file=None)
        for backend in ("keyring", "file", "memory")
    }
    assert isinstance(opened["keyring"], KeyringStore)
    assert isinstance(opened["file"], FileStore)
    assert isinstance(opened["memory"], MemoryStore)
    assert {name: store.name for name, store in opened.items()} == {
        "keyring": "keyring",
        "file": "file",
        "memory": "memory",
    }


def test_file_backend_from_a_config_file_uses_the_state_dir_key_path(tmp_path: Path) -> None:
    config_path = tmp_path / "agent.toml"
    config_path.write_text('[agent]\nstate_dir = "state"\n[keystore]\nbackend = "file"\n', encoding="utf-8")
    config = load_config(config_path, platform=FakePlatform(tmp_path / "platform"))
    store = open_keystore(config.keystore, config_file=config.source)
    key = Ed25519PrivateKey.generate()
    store.save(key)
    assert (tmp_path / "state" / "device-key.pem").is_file()
    assert public(store.load()) == public(key)


def test_file_backend_without_a_path_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(KeystoreUnavailable, match=rf"needs \[keystore\] file_path in {tmp_path / 'agent.toml'}"):
        open_keystore(KeystoreConfig(backend="file"), config_file=tmp_path / "agent.toml")


def test_unknown_backend_is_refused_with_the_choices() -> None:
    with pytest.raises(KeystoreUnavailable, match=r"unknown \[keystore\] backend 'tpm'.*keyring, file, memory"):
        open_keystore(KeystoreConfig(backend="tpm"), config_file=None)


def test_keyring_backend_never_falls_back_to_a_file(tmp_path: Path) -> None:
    store = open_keystore(KeystoreConfig(backend="keyring", file_path=tmp_path / "k.pem"), config_file=None)
    assert isinstance(store, KeyringStore)
    assert not (tmp_path / "k.pem").exists()


def test_memory_store_round_trips_and_is_shared_by_slot(tmp_path: Path) -> None:
    config = KeystoreConfig(backend="memory", file_path=tmp_path / "a.pem")
    first = open_keystore(config, config_file=None)
    assert first.load() is None
    key = Ed25519PrivateKey.generate()
    first.save(key)
    # Same process, same slot: another opening sees the key (as a restarted service would).
    assert public(open_keystore(config, config_file=None).load()) == public(key)
    other = open_keystore(KeystoreConfig(backend="memory", file_path=tmp_path / "b.pem"), config_file=None)
    assert other.load() is None
    first.check()
    first.delete()
    assert first.load() is None
