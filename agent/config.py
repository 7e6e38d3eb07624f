"""The agent's TOML configuration: typed sections, platform defaults and located errors.

Every section of ``agent.toml`` maps to a frozen dataclass with the same key names. A file only
needs the keys it changes; paths not given derive from ``[agent] state_dir`` (itself a platform
default). Anything unknown, mistyped or out of range is refused with the file, section and key,
so an IT admin pushing configs to hundreds of PCs learns what is wrong from the first error.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agent.platform import Platform, current_platform

KEYSTORE_BACKENDS = ("keyring", "file", "memory")
LOG_FILE_DIR = "logs"
DEVICE_KEY_FILE = "device-key.pem"


@dataclass(frozen=True)
class HqConfig:
    url: str = ""
    ca_file: Path | None = None
    timeout_s: float = 10.0
    # Installers drop the one-time token here; the service enrolls on first start and deletes it.
    enroll_token_file: Path | None = None


@dataclass(frozen=True)
class AgentSection:
    state_dir: Path
    outlet_id: str = ""
    heartbeat_interval_s: float = 10.0
    policy_interval_s: float = 300.0


@dataclass(frozen=True)
class KeystoreConfig:
    backend: str = "keyring"  # "keyring" | "file" | "memory"
    file_path: Path | None = None


@dataclass(frozen=True)
class SpoolConfig:
    max_bytes: int = 64 * 1024 * 1024
    max_age_s: float = 7 * 86400.0
    batch_size: int = 200


@dataclass(frozen=True)
class UplinkConfig:
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0


@dataclass(frozen=True)
class LogConfig:
    dir: Path
    level: str = "INFO"
    max_bytes: int = 10 * 1024 * 1024
    backups: int = 5


@dataclass(frozen=True)
class ExportsConfig:
    # Folders watched for exports of customer data; empty means every user's Downloads, Desktop,
    # Documents and browser download folders. Removable drives are always watched.
    folders: tuple[Path, ...] = ()


@dataclass(frozen=True)
class AgentConfig:
    # Where the config was read from; not part of the config's value, so a config written by
    # render_config and read back compares equal to the original.
    source: Path | None = field(compare=False)
    hq: HqConfig
    agent: AgentSection
    keystore: KeystoreConfig
    spool: SpoolConfig
    uplink: UplinkConfig
    log: LogConfig
    exports: ExportsConfig = field(default_factory=ExportsConfig)


class ConfigError(ValueError):
    """A config file that cannot be read, parsed or accepted; the message locates the problem."""


SECTIONS: dict[str, type] = {
    "hq": HqConfig,
    "agent": AgentSection,
    "keystore": KeystoreConfig,
    "spool": SpoolConfig,
    "uplink": UplinkConfig,
    "log": LogConfig,
    "exports": ExportsConfig,
}


# --- value checks: (predicate, what was expected) per section.key --------------------------------


def _http_url(value: str) -> bool:
    if value == "":
        return True  # not enrolled yet: enrollment writes the HQ URL
    try:
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unbalanced "[" in an IPv6 host
        return False


def _at_least(limit: float) -> Callable[[Any], bool]:
    return lambda value: value >= limit


def _positive(value: float) -> bool:
    return value > 0


_LEVELS = tuple(name for name in logging.getLevelNamesMapping() if name != "NOTSET")

_CHECKS: dict[tuple[str, str], tuple[Callable[[Any], bool], str]] = {
    ("hq", "url"): (_http_url, 'an http:// or https:// URL with a host (or "" before enrollment)'),
    ("hq", "timeout_s"): (_positive, "a number of seconds > 0"),
    ("agent", "heartbeat_interval_s"): (_at_least(1.0), "a number of seconds >= 1"),
    ("agent", "policy_interval_s"): (_at_least(1.0), "a number of seconds >= 1"),
    ("keystore", "backend"): (lambda v: v in KEYSTORE_BACKENDS, "one of " + ", ".join(map(repr, KEYSTORE_BACKENDS))),
    ("spool", "max_bytes"): (_positive, "a positive number of bytes"),
    ("spool", "max_age_s"): (_positive, "a number of seconds > 0"),
    ("spool", "batch_size"): (_positive, "a positive number of events"),
    ("uplink", "backoff_initial_s"): (_positive, "a number of seconds > 0"),
    ("uplink", "backoff_max_s"): (_positive, "a number of seconds > 0"),
    ("log", "level"): (lambda v: v.upper() in _LEVELS, "a logging level: " + ", ".join(_LEVELS)),
    ("log", "max_bytes"): (_positive, "a positive number of bytes"),
    # RotatingFileHandler never rotates with zero backups; the file would grow without bound.
    ("log", "backups"): (_positive, "a positive number of rotated files to keep"),
}


# --- reading ------------------------------------------------------------------------------------


class _Reader:
    """Turns one parsed TOML document into checked section values, naming the file in errors."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.base = source.parent

    def fail(self, section: str, key: str, expected: str, value: Any) -> ConfigError:
        return ConfigError(f"{self.source}: [{section}] {key}: expected {expected}, got {value!r:.200}")

    def sections(self, document: dict[str, Any]) -> dict[str, dict[str, Any]]:
        allowed = ", ".join(f"[{name}]" for name in SECTIONS)
        result: dict[str, dict[str, Any]] = {}
        for name, table in document.items():
            if name not in SECTIONS:
                raise ConfigError(f"{self.source}: [{name}]: unknown section; allowed sections: {allowed}")
            if not isinstance(table, dict):
                raise ConfigError(
                    f"{self.source}: {name}: expected a [{name}] table, got {type(table).__name__} {table!r:.100}"
                )
            result[name] = self.section(name, table)
        return result

    def section(self, name: str, table: dict[str, Any]) -> dict[str, Any]:
        kinds = {f.name: str(f.type) for f in dataclasses.fields(SECTIONS[name])}
        values: dict[str, Any] = {}
        for key, raw in table.items():
            if key not in kinds:
                raise ConfigError(
                    f"{self.source}: [{name}] {key}: unknown key; allowed keys: {', '.join(sorted(kinds))}"
                )
            value = self.convert(name, key, kinds[key], raw)
            predicate, expected = _CHECKS.get((name, key), (lambda _: True, ""))
            if not predicate(value):
                raise self.fail(name, key, expected, raw)
            values[key] = value
        if name == "log" and "level" in values:
            values["level"] = values["level"].upper()
        return values

    def convert(self, section: str, key: str, kind: str, raw: Any) -> Any:
        if kind == "str":
            if not isinstance(raw, str):
                raise self.fail(section, key, "a string", raw)
            return raw
        if kind == "int":
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise self.fail(section, key, "an integer", raw)
            return raw
        if kind == "float":
            if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
                raise self.fail(section, key, "a finite number", raw)
            return float(raw)
        if kind == "tuple[Path, ...]":
            if not isinstance(raw, list):
                raise self.fail(section, key, "a list of path strings", raw)
            return tuple(self.path(section, f"{key}[{index}]", item) for index, item in enumerate(raw))
        return self.path(section, key, raw)

    def path(self, section: str, key: str, raw: Any) -> Path:
        if not isinstance(raw, str) or not raw or "\0" in raw:
            raise self.fail(section, key, "a non-empty path string", raw)
        # A relative path means "next to this config file", not "wherever the service started".
        return Path(os.path.normpath(self.base / Path(raw).expanduser()))


def _check_cross_fields(reader: _Reader, uplink: UplinkConfig) -> None:
    if uplink.backoff_max_s < uplink.backoff_initial_s:
        expected = f"a number >= backoff_initial_s ({uplink.backoff_initial_s:g})"
        raise reader.fail("uplink", "backoff_max_s", expected, uplink.backoff_max_s)


def _parse(source: Path) -> dict[str, Any]:
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{source}: config file does not exist") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read config file: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{source}:{line}: config file is not UTF-8 text") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        where = f"{source}:{match.group(1)}:{match.group(2)}" if match else f"{source}"
        raise ConfigError(f"{where}: invalid TOML: {exc}") from exc


def _build(source: Path | None, values: dict[str, dict[str, Any]], platform: Platform) -> AgentConfig:
    agent_values = values.get("agent", {})
    state_dir = agent_values.get("state_dir") or platform.default_state_dir()
    keystore_values = {"file_path": state_dir / DEVICE_KEY_FILE, **values.get("keystore", {})}
    log_values = {"dir": state_dir / LOG_FILE_DIR, **values.get("log", {})}
    return AgentConfig(
        source=source,
        hq=HqConfig(**values.get("hq", {})),
        agent=AgentSection(**{**agent_values, "state_dir": state_dir}),
        keystore=KeystoreConfig(**keystore_values),
        spool=SpoolConfig(**values.get("spool", {})),
        uplink=UplinkConfig(**values.get("uplink", {})),
        log=LogConfig(**log_values),
        exports=ExportsConfig(**values.get("exports", {})),
    )


def default_config(platform: Platform | None = None) -> AgentConfig:
    """The configuration with no file at all: every default, paths under the platform state dir."""
    return _build(None, {}, platform or current_platform())


def load_config(path: Path | None, *, platform: Platform | None = None) -> AgentConfig:
    """Read ``path``, or the platform's default config file when ``path`` is None.

    A missing default file means "use defaults"; a missing explicit file is an error, since
    someone asked for that file and a silent fallback would hide a typo in ``--config``.
    """
    platform = platform or current_platform()
    if path is None:
        path = platform.default_config_path()
        if not path.exists():
            return default_config(platform)
    source = Path(os.path.abspath(path))
    reader = _Reader(source)
    values = reader.sections(_parse(source))
    config = _build(source, values, platform)
    _check_cross_fields(reader, config.uplink)
    return config


# --- writing ------------------------------------------------------------------------------------


def _toml_value(value: str | Path | int | float | tuple[Path, ...]) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, bool):
        raise TypeError("no config key takes a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write a non-finite number {value!r} to the config")
        return repr(value)
    # JSON string escapes are valid TOML basic-string escapes; DEL is the one control
    # character JSON leaves raw that TOML forbids.
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


def render_config(config: AgentConfig) -> str:
    """TOML text that ``load_config`` reads back to a config equal to ``config``.

    Paths are written as they are (absolute ones stay absolute), ``None`` values are left out
    so they read back as their defaults.
    """
    lines = ["# Terminal Guard agent configuration", ""]
    for name in SECTIONS:
        section = getattr(config, name)
        lines.append(f"[{name}]")
        for item in dataclasses.fields(section):
            value = getattr(section, item.name)
            if value is not None:
                lines.append(f"{item.name} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)
