"""SHA-256 of executables, streamed and cached by path + size + mtime."""

from __future__ import annotations

import hashlib
import logging

from agent.redact import redact
from agent.sensors.file_cache import FileResultCache, FileStamp

log = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
# Hashing runs on the sensor thread; a cap keeps one huge file from delaying every other
# process start (256 MiB is about 0.2 s at SHA-NI speed, once per file version).
DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_ENTRIES = 4096


def sha256_file(path: str, *, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> str | None:
    """Hex SHA-256 of the file, or None when it cannot be read or exceeds ``max_bytes``."""
    digest = hashlib.sha256()
    read = 0
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK_BYTES):
                read += len(chunk)
                if read > max_bytes:
                    return None
                digest.update(chunk)
    except OSError as exc:
        log.debug("cannot hash %s: %s", redact(str(path)), exc.strerror or type(exc).__name__)
        return None
    return digest.hexdigest()


class ExeHashCache:
    """Bounded memo of executable hashes; a replaced file (new size or mtime) is hashed again."""

    def __init__(
        self, *, max_entries: int = DEFAULT_MAX_ENTRIES, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    ) -> None:
        self._cache: FileResultCache[str] = FileResultCache(max_entries)
        self._max_file_bytes = max_file_bytes
        self.files_hashed = 0

    def sha256(self, path: str | None) -> str | None:
        if not path:
            return None
        return self._cache.get(path, self._compute)

    def _compute(self, path: str, stamp: FileStamp) -> str | None:
        if stamp.size > self._max_file_bytes:
            return None
        self.files_hashed += 1
        return sha256_file(path, max_bytes=self._max_file_bytes)

    @property
    def hits(self) -> int:
        return self._cache.hits

    def __len__(self) -> int:
        return len(self._cache)
