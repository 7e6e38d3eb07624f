"""Where ECS lines go: syslog (RFC 5424) over UDP or TCP (RFC 6587 octet counting), or HTTP NDJSON.

    syslog+udp://siem.example:514   syslog+tcp://siem.example:601   https://siem.example/ingest

A sink sends one batch and raises SinkError when it could not; the forwarder retries the batch
(so delivery is at least once) and advances its cursor only after a batch went out.
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import SplitResult, parse_qs, urlsplit

import urllib3

from hq.timefmt import at_utc

SYSLOG_VERSION = 1
APP_NAME = "terminal-guard-hq"
FACILITIES = {"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22,
              "local7": 23, "auth": 4, "authpriv": 10, "security": 13}
# Syslog severity per event priority (low, medium, high, critical): info, notice, warning, critical.
SYSLOG_SEVERITY = (6, 5, 4, 2)
UDP_MAX_BYTES = 65_000
AUTH_ENV = "TG_SIEM_AUTHORIZATION"  # the HTTP sink's Authorization header, kept out of argv
CA_ENV = "TG_SIEM_CA"
_MSGID_BAD = re.compile(r"[^!-~]")


class SinkError(RuntimeError):
    pass


class SinkConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Line:
    """One event ready to send: its ECS JSON and what the syslog header needs."""

    pk: int
    text: str
    priority: int
    kind: str
    created: float


class Sink(Protocol):
    name: str

    def send(self, lines: list[Line]) -> int:
        """Send a batch; return how many lines were dropped as unsendable (too large). SinkError: retry later."""
        ...

    def close(self) -> None: ...


def syslog_frame(line: Line, *, facility: int, hostname: str) -> bytes:
    """An RFC 5424 message: <PRI>1 TIMESTAMP HOST APP PROCID MSGID - MSG (MSG is ASCII JSON, no BOM)."""
    pri = facility * 8 + SYSLOG_SEVERITY[min(max(line.priority, 0), 3)]
    when = at_utc(line.created)
    # RFC 5424's NILVALUE for a time no date holds (a device may report any `created`).
    stamp = "-" if when is None else when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    msgid = _MSGID_BAD.sub("_", line.kind)[:32] or "-"
    header = f"<{pri}>{SYSLOG_VERSION} {stamp} {hostname[:255] or '-'} {APP_NAME} {os.getpid()} {msgid} -"
    return f"{header} {line.text}".encode("ascii", "backslashreplace")


class SyslogUdp:
    def __init__(self, host: str, port: int, *, facility: int, name: str) -> None:
        self.name = name
        self._address = (host, port)
        self._facility = facility
        self._hostname = socket.gethostname()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_DGRAM)

    def send(self, lines: list[Line]) -> int:
        dropped = 0
        for line in lines:
            frame = syslog_frame(line, facility=self._facility, hostname=self._hostname)
            if len(frame) > UDP_MAX_BYTES:
                dropped += 1
                continue
            try:
                self._socket.sendto(frame, self._address)
            except OSError as exc:
                raise SinkError(f"{self.name}: {exc}") from None
        return dropped

    def close(self) -> None:
        self._socket.close()


class SyslogTcp:
    def __init__(self, host: str, port: int, *, facility: int, name: str, timeout_s: float = 5.0) -> None:
        self.name = name
        self._address = (host, port)
        self._facility = facility
        self._timeout_s = timeout_s
        self._hostname = socket.gethostname()
        self._socket: socket.socket | None = None

    def _connected(self) -> socket.socket:
        if self._socket is None:
            self._socket = socket.create_connection(self._address, timeout=self._timeout_s)
        return self._socket

    def send(self, lines: list[Line]) -> int:
        payload = bytearray()
        for line in lines:
            frame = syslog_frame(line, facility=self._facility, hostname=self._hostname)
            payload += f"{len(frame)} ".encode() + frame  # RFC 6587 octet counting
        try:
            self._connected().sendall(payload)
        except OSError as exc:
            self.close()
            raise SinkError(f"{self.name}: {exc}") from None
        return 0

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


class HttpNdjson:
    def __init__(self, url: str, *, name: str, timeout_s: float = 10.0) -> None:
        self.name = name
        self._url = url
        headers = {"Content-Type": "application/x-ndjson"}
        if os.environ.get(AUTH_ENV):
            headers["Authorization"] = os.environ[AUTH_ENV]
        self._headers = headers
        context: Any = None
        if url.startswith("https:"):
            context = ssl.create_default_context(cafile=os.environ.get(CA_ENV) or None)
        self._pool = urllib3.PoolManager(ssl_context=context, timeout=urllib3.Timeout(total=timeout_s),
                                         retries=False)

    def send(self, lines: list[Line]) -> int:
        body = "".join(line.text + "\n" for line in lines).encode("utf-8")
        try:
            response = self._pool.request("POST", self._url, body=body, headers=self._headers)
        except urllib3.exceptions.HTTPError as exc:
            raise SinkError(f"{self.name}: {exc}") from None
        if response.status >= 300:
            raise SinkError(f"{self.name}: HTTP {response.status}")
        return 0

    def close(self) -> None:
        self._pool.clear()


def _port(parts: SplitResult, default: int, url: str) -> int:
    try:
        return parts.port or default
    except ValueError:
        raise SinkConfigError(f"--siem {url}: the port is not a number from 1 to 65535") from None


def sink_name(url: str) -> str:
    """The URL without credentials or query: what the cursor is keyed by and logs may show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    shown = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{shown}{port}{parts.path}"[:255]


def open_sink(url: str) -> Sink:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if not parts.hostname:
        raise SinkConfigError(f"--siem {url!r}: expected syslog+udp://HOST:PORT, syslog+tcp://HOST:PORT or an "
                              "http(s):// URL")
    _port(parts, 0, url)  # a bad port is named before anything else reads it
    name = sink_name(url)
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    if scheme in ("syslog", "syslog+udp", "syslog+tcp"):
        facility_name = options.get("facility", "local0")
        if facility_name not in FACILITIES:
            raise SinkConfigError(f"--siem {url}: facility: expected one of {', '.join(FACILITIES)}")
        facility = FACILITIES[facility_name]
        if scheme == "syslog+tcp":
            return SyslogTcp(parts.hostname, _port(parts, 601, url), facility=facility, name=name)
        return SyslogUdp(parts.hostname, _port(parts, 514, url), facility=facility, name=name)
    if scheme in ("http", "https"):
        return HttpNdjson(url, name=name)
    raise SinkConfigError(f"--siem {url!r}: unknown scheme {scheme!r}; expected syslog+udp, syslog+tcp, http or https")


def encode(doc: dict[str, Any]) -> str:
    """One JSON line, ASCII only (so the syslog MSG needs no BOM and no transcoding)."""
    return json.dumps(doc, ensure_ascii=True, separators=(",", ":"), sort_keys=True, default=str)
