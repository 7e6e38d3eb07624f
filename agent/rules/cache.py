"""Compiled rule sets on disk, so that a restart of the service does not start the compile worker.

One file per input, `<key>.json`, where the key is the SHA-256 of the rule texts, the compiled
format version and the agent version (a new agent may compile differently). The file is an
envelope around the compiled set and the rule errors of that compile:

    {"format": 1, "agent": "0.1.0", "key": "<hex>", "checksum": "<sha256 of payload>",
     "payload": {"ruleset": <codec.py format>, "errors": [...]}}

The checksum covers the canonical JSON of the payload, so damage that still parses (a flipped
character inside a needle) is caught as well as truncation; the codec's strict validation catches
the rest. A damaged entry is logged, deleted and reported as a miss: the caller compiles again.
Writes go to a temporary file first and are renamed into place, and only the newest few entries
are kept (policy changes produce a new key each time).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent import __version__
from agent.rules.codec import FORMAT, CompiledFormatError, dump_errors, expect_mapping, load_errors
from agent.rules.engine import RuleSet
from agent.rules.errors import RuleError

log = logging.getLogger(__name__)

KEEP_ENTRIES = 4
SUFFIX = ".json"
_ENVELOPE_KEYS = ("format", "agent", "key", "checksum", "payload")


def cache_key(texts: Sequence[tuple[str, str]], *, agent_version: str = __version__) -> str:
    """SHA-256 (hex) of the inputs, the compiled format version and the agent version."""
    material = {"format": FORMAT, "agent": agent_version, "texts": [[name, text] for name, text in texts]}
    return hashlib.sha256(_canonical(material)).hexdigest()


def _canonical(data: Any) -> bytes:
    # ensure_ascii: a lone surrogate in a policy text is escaped instead of failing to encode.
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


class RuleCache:
    """The cache folder of compiled rule sets."""

    def __init__(self, folder: Path, *, keep: int = KEEP_ENTRIES) -> None:
        self.folder = Path(folder)
        self.keep = keep

    def path(self, key: str) -> Path:
        return self.folder / f"{key}{SUFFIX}"

    def load(self, key: str) -> tuple[RuleSet, list[RuleError]] | None:
        """The entry for `key`, or None when there is none or it is damaged (then it is deleted)."""
        return self._load(self.path(key), key)

    def latest(self) -> tuple[RuleSet, list[RuleError], Path] | None:
        """The newest usable entry of any key: the last rules that compiled, for when compiling fails."""
        for path in self._entries():
            found = self._load(path, path.name.removesuffix(SUFFIX))
            if found is not None:
                return (*found, path)
        return None

    def store(self, key: str, ruleset: RuleSet, errors: Sequence[RuleError]) -> None:
        """Write the entry for `key`; a cache that cannot be written is logged, never fatal."""
        payload = {"ruleset": ruleset.to_compiled(), "errors": dump_errors(errors)}
        envelope = {"format": FORMAT, "agent": __version__, "key": key,
                    "checksum": hashlib.sha256(_canonical(payload)).hexdigest(), "payload": payload}
        path = self.path(key)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            temporary.write_bytes(json.dumps(envelope, ensure_ascii=True, allow_nan=False).encode("ascii"))
            os.replace(temporary, path)
        except OSError as exc:
            log.warning("cannot write the rule cache %s: %s", path, exc.strerror or exc)
            _remove(temporary)
            return
        for stale in self._entries()[self.keep :]:
            _remove(stale)

    # ------------------------------------------------------------ internals

    def _entries(self) -> list[Path]:
        """Cache files, newest first."""
        try:
            files = [p for p in self.folder.iterdir() if p.name.endswith(SUFFIX) and p.is_file()]
        except OSError:
            return []
        return sorted(files, key=_mtime, reverse=True)

    def _load(self, path: Path, key: str) -> tuple[RuleSet, list[RuleError]] | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read the rule cache %s: %s", path, exc.strerror or exc)
            return None
        try:
            return decode_entry(raw, key)
        except (ValueError, RecursionError) as exc:  # JSON, format and checksum errors are all ValueErrors
            log.warning("rule cache %s is damaged (%s); it is deleted and the rules are compiled again", path, exc)
        except Exception:  # a bug in decoding must cost a recompile, not the service
            log.exception("rule cache %s could not be loaded; it is deleted and the rules are compiled again", path)
        _remove(path)
        return None


def decode_entry(raw: bytes, key: str) -> tuple[RuleSet, list[RuleError]]:
    """Check and decode one cache file; raises ValueError (CompiledFormatError, JSON errors)."""
    envelope = expect_mapping(json.loads(raw), "cache", _ENVELOPE_KEYS)
    if type(envelope["format"]) is not int or envelope["format"] != FORMAT:
        raise CompiledFormatError("cache.format", f"expected {FORMAT}, got {envelope['format']!r}")
    if envelope["key"] != key:
        raise CompiledFormatError("cache.key", "does not match the file name")
    if envelope["checksum"] != hashlib.sha256(_canonical(envelope["payload"])).hexdigest():
        raise CompiledFormatError("cache.checksum", "does not match the payload")
    payload = expect_mapping(envelope["payload"], "cache.payload", ("ruleset", "errors"))
    return RuleSet.from_compiled(payload["ruleset"]), load_errors(payload["errors"], "cache.payload.errors")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("cannot delete %s: %s", path, exc.strerror or exc)
