"""Version information of Windows executables (OriginalFileName, CompanyName, ...), via pefile.

A renamed tool keeps its version resource: ``notepad.exe`` that is really AutoHotkey still says
``OriginalFileName: AutoHotkey.exe``. Reading it costs a parse of the resource directory, so it
is done only when asked (rules need it) and cached by path + size + mtime. ``pefile`` is a
Windows-only dependency and is imported lazily; :func:`parse_version_info` itself works on any
platform (the tests run it on Linux against a PE file they build).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Any

from agent.redact import redact
from agent.sensors.file_cache import FileResultCache, FileStamp

log = logging.getLogger(__name__)

# Installers and game binaries can be gigabytes; their version info is not worth mapping them.
DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_ENTRIES = 2048
RESOURCE_DIRECTORY = 2  # IMAGE_DIRECTORY_ENTRY_RESOURCE

_KEYS = {
    b"OriginalFilename": "original_file_name",
    b"CompanyName": "company",
    b"ProductName": "product",
    b"FileDescription": "description",
}


@dataclass(frozen=True)
class PeVersionInfo:
    original_file_name: str | None = None
    company: str | None = None
    product: str | None = None
    description: str | None = None


def _clean(raw: bytes) -> str | None:
    text = raw.decode("utf-8", "replace").strip().strip("\x00").strip()
    return text or None


def _string_tables(pe: Any) -> list[dict[bytes, bytes]]:
    tables: list[dict[bytes, bytes]] = []
    for file_info in getattr(pe, "FileInfo", None) or []:
        # pefile >= 2021 gives a list per VS_VERSIONINFO; older versions a flat list.
        entries = file_info if isinstance(file_info, list) else [file_info]
        for entry in entries:
            if getattr(entry, "Key", b"") != b"StringFileInfo":
                continue
            tables.extend(table.entries for table in getattr(entry, "StringTable", []))
    return tables


def version_info_from_pe(pe: Any) -> PeVersionInfo | None:
    """Pick the four fields from a parsed ``pefile.PE``; the first language that has a field wins."""
    values: dict[str, str] = {}
    for table in _string_tables(pe):
        for key, field in _KEYS.items():
            value = table.get(key)
            if field not in values and value is not None and (text := _clean(value)):
                values[field] = text
    return PeVersionInfo(**values) if values else None


def parse_version_info(path: str, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> PeVersionInfo | None:
    """Version info of the PE file at ``path``; None when absent, unreadable or not a PE file."""
    try:
        import pefile
    except ImportError:
        log.warning("pefile is not installed; PE version info is unavailable")
        return None
    stamp = FileStamp.of(path)
    if stamp is None or stamp.size > max_file_bytes:
        return None
    try:
        with pefile.PE(path, fast_load=True) as pe:
            pe.parse_data_directories(directories=[RESOURCE_DIRECTORY])
            return version_info_from_pe(pe)
    except Exception as exc:
        # pefile raises PEFormatError, but also struct/Index/Key errors on crafted files;
        # one malformed binary must never stop the process sensor.
        log.debug("no PE version info for %s: %s", redact(str(path)), type(exc).__name__)
        return None


class PeInfoReader:
    """Cached version-info reader; on any platform but Windows it always answers None."""

    def __init__(
        self,
        *,
        platform_name: str | None = None,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    ) -> None:
        self.enabled = (platform_name or sys.platform) == "win32"
        self._cache: FileResultCache[PeVersionInfo] = FileResultCache(max_entries)
        self._max_file_bytes = max_file_bytes

    def read(self, path: str | None) -> PeVersionInfo | None:
        if not self.enabled or not path:
            return None
        return self._cache.get(path, self._compute)

    def _compute(self, path: str, stamp: FileStamp) -> PeVersionInfo | None:
        return parse_version_info(path, max_file_bytes=self._max_file_bytes)
