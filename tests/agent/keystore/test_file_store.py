from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.keystore import KeystoreUnavailable
from agent.keystore.file_store import FileStore


def raw(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    # With umask 0 a file created with default permissions would be 0666: the store must not be.
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_round_trip_writes_a_0600_pem_in_a_0700_folder(tmp_path: Path, permissive_umask: None) -> None:
    path = tmp_path / "state" / "device-key.pem"
    store = FileStore(path)
    key = Ed25519PrivateKey.generate()
    store.save(key)
    assert mode_of(path) == 0o600
    assert mode_of(path.parent) == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = store.load()
    assert loaded is not None and raw(loaded) == raw(key)


def test_missing_file_loads_as_no_key(tmp_path: Path) -> None:
    assert FileStore(tmp_path / "device-key.pem").load() is None


def test_saving_again_replaces_the_key_and_leaves_no_temp_files(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "device-key.pem")
    store.save(Ed25519PrivateKey.generate())
    second = Ed25519PrivateKey.generate()
    store.save(second)
    loaded = store.load()
    assert loaded is not None and raw(loaded) == raw(second)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["device-key.pem"]
    assert mode_of(tmp_path / "device-key.pem") == 0o600


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o700 | 0o020])
def test_key_file_accessible_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "device-key.pem"
    store = FileStore(path)
    store.save(Ed25519PrivateKey.generate())
    os.chmod(path, mode)  # what a careless copy or restore might do
    with pytest.raises(KeystoreUnavailable) as caught:
        store.load()
    assert f"mode {mode:04o}" in str(caught.value)
    assert f"chmod 600 {path}" in str(caught.value)
    with pytest.raises(KeystoreUnavailable):
        store.check()


def test_key_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "device-key.pem")
    other_uid = os.geteuid() + 4242
    foreign = os.stat_result((stat.S_IFREG | 0o600, 0, 0, 1, other_uid, 0, 100, 0, 0, 0))
    with pytest.raises(KeystoreUnavailable, match=f"belongs to uid {other_uid}"):
        store._require_private(foreign)


def test_symlink_at_the_key_path_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.pem"
    FileStore(target).save(Ed25519PrivateKey.generate())
    link = tmp_path / "device-key.pem"
    link.symlink_to(target)
    with pytest.raises(KeystoreUnavailable, match="cannot read the device key file"):
        FileStore(link).load()


def test_garbage_file_says_to_re_enroll(tmp_path: Path) -> None:
    path = tmp_path / "device-key.pem"
    path.write_bytes(b"not a key")
    path.chmod(0o600)
    with pytest.raises(KeystoreUnavailable, match=r"not a readable PKCS8 PEM key.*enroll --force"):
        FileStore(path).load()


def test_a_non_ed25519_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "device-key.pem"
    other = ec.generate_private_key(ec.SECP256R1())
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, pem)
    os.close(fd)
    with pytest.raises(KeystoreUnavailable, match="not Ed25519"):
        FileStore(path).load()


def test_delete_removes_the_file_and_is_idempotent(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "device-key.pem")
    store.save(Ed25519PrivateKey.generate())
    store.delete()
    store.delete()
    assert store.load() is None


def test_check_passes_for_a_creatable_location(tmp_path: Path) -> None:
    FileStore(tmp_path / "not" / "yet" / "device-key.pem").check()


def test_location_that_cannot_hold_a_file_names_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    config_file = tmp_path / "agent.toml"
    store = FileStore(blocker / "device-key.pem", config_file=config_file)
    with pytest.raises(KeystoreUnavailable, match=rf"set \[keystore\] file_path in {config_file}"):
        store.check()
    with pytest.raises(KeystoreUnavailable, match=rf"set \[keystore\] file_path in {config_file}"):
        store.save(Ed25519PrivateKey.generate())
