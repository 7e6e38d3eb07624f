from __future__ import annotations

import hashlib
import os
from pathlib import Path

from agent.sensors.exe_hash import ExeHashCache, sha256_file
from agent.sensors.file_cache import FileResultCache


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_hash_is_the_sha256_of_the_file_streamed_in_chunks(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # spans several read chunks
    path = _write(tmp_path / "frpc", data)
    assert ExeHashCache().sha256(str(path)) == hashlib.sha256(data).hexdigest()


def test_unchanged_file_is_hashed_once(tmp_path: Path) -> None:
    path = _write(tmp_path / "chrome.exe", b"MZ" + os.urandom(4096))
    cache = ExeHashCache()
    digests = {cache.sha256(str(path)) for _ in range(50)}
    assert len(digests) == 1
    assert cache.files_hashed == 1
    assert cache.hits == 49


def test_file_replaced_in_place_is_hashed_again(tmp_path: Path) -> None:
    path = _write(tmp_path / "ToDesk.exe", b"A" * 100)
    cache = ExeHashCache()
    first = cache.sha256(str(path))
    _write(path, b"B" * 100)  # same size: only the mtime tells
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    second = cache.sha256(str(path))
    assert second == hashlib.sha256(b"B" * 100).hexdigest() != first
    _write(path, b"C" * 101)  # new size
    assert cache.sha256(str(path)) == hashlib.sha256(b"C" * 101).hexdigest()


def test_missing_unreadable_and_oversized_files_give_none(tmp_path: Path) -> None:
    cache = ExeHashCache(max_file_bytes=1000)
    big = _write(tmp_path / "big.exe", b"x" * 1001)
    assert cache.sha256(str(big)) is None
    assert cache.sha256(str(tmp_path / "gone.exe")) is None
    assert cache.sha256(str(tmp_path)) is None  # a directory cannot be read as a file
    assert cache.sha256(None) is None
    assert cache.sha256("") is None
    assert cache.sha256("bad\x00path") is None


def test_file_growing_past_the_cap_while_read_gives_none(tmp_path: Path) -> None:
    path = _write(tmp_path / "growing", b"y" * 5000)
    assert sha256_file(str(path), max_bytes=4096) is None


def test_cache_keeps_at_most_max_entries_dropping_the_least_recent(tmp_path: Path) -> None:
    cache: FileResultCache[str] = FileResultCache(max_entries=3)
    paths = [str(_write(tmp_path / f"f{i}", bytes([i]))) for i in range(5)]
    computed: list[str] = []

    def compute(path: str, _stamp: object) -> str:
        computed.append(path)
        return path

    for path in paths[:3]:
        cache.get(path, compute)
    cache.get(paths[0], compute)  # f0 is now the most recent
    cache.get(paths[3], compute)  # evicts f1
    assert len(cache) == 3
    computed.clear()
    cache.get(paths[0], compute)
    cache.get(paths[1], compute)
    assert computed == [paths[1]]
