"""The device key in a PKCS8 PEM file, for machines without a usable OS keyring.

Only used when the config says ``[keystore] backend = "file"``. On POSIX the file is created
with mode 0600 in one step (``os.open`` with the mode, then an atomic rename), so there is no
moment where it exists with wider permissions, and ``load`` refuses a file that group or others
can access. On Windows mode bits do not apply: the protection is the ACL on the state folder
(``%ProgramData%\\TerminalGuard``: SYSTEM and Administrators only), which the installer sets.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.keystore import KeystoreUnavailable, config_hint, key_from_pem, key_to_pem

POSIX = os.name == "posix"
MAX_KEY_FILE_BYTES = 64 * 1024
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)


class FileStore:
    name = "file"

    def __init__(self, path: Path, *, config_file: Path | None = None) -> None:
        self.path = path
        self._config_file = config_file

    def _fix_location(self) -> str:
        return f"set [keystore] file_path in {config_hint(self._config_file)} to a writable location"

    def load(self) -> Ed25519PrivateKey | None:
        try:
            # O_NOFOLLOW: a symlink planted at the key path is refused, not followed.
            fd = os.open(self.path, os.O_RDONLY | _O_NOFOLLOW | _O_BINARY)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise KeystoreUnavailable(f"cannot read the device key file {self.path}: {exc.strerror or exc}") from exc
        with os.fdopen(fd, "rb") as handle:
            # Checked on the open descriptor, so the file cannot be swapped between check and read.
            self._require_private(os.fstat(handle.fileno()))
            data = handle.read(MAX_KEY_FILE_BYTES)
        return key_from_pem(data, str(self.path))

    def _require_private(self, info: os.stat_result) -> None:
        if not POSIX:
            return
        if not stat.S_ISREG(info.st_mode):
            raise KeystoreUnavailable(f"the device key file {self.path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise KeystoreUnavailable(
                f"the device key file {self.path} is accessible by group or others (mode {mode:04o}); "
                f"the key must be private to the agent: run `chmod 600 {self.path}`"
            )
        if info.st_uid not in (os.geteuid(), 0):
            raise KeystoreUnavailable(
                f"the device key file {self.path} belongs to uid {info.st_uid}, not to the agent's user "
                f"(uid {os.geteuid()}) or root; another account could replace it: `chown` it or re-enroll"
            )

    def save(self, key: Ed25519PrivateKey) -> None:
        temp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(8)}.tmp")
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # 0o600 at creation (the umask can only take bits away); never chmod afterwards.
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_BINARY, 0o600)
        except OSError as exc:
            reason = exc.strerror or exc
            raise KeystoreUnavailable(
                f"cannot create the device key file in {self.path.parent}: {reason}; {self._fix_location()}"
            ) from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(key_to_pem(key))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        _sync_directory(self.path.parent)

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)

    def check(self) -> None:
        if self.path.exists() or self.path.is_symlink():
            self.load()  # raises with the reason when the file is not private or not a key
            return
        folder = _nearest_existing(self.path.parent)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise KeystoreUnavailable(
                f"cannot create the device key file {self.path}: {folder} is not writable; {self._fix_location()}"
            )


def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _sync_directory(folder: Path) -> None:
    """Make the rename durable: without it a power cut can leave the old (or no) key file."""
    if not POSIX:
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
