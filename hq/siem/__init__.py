"""Events to a SIEM as ECS JSON lines: syslog (RFC 5424, UDP or TCP) or HTTP NDJSON.

    terminal-guard-hq serve --siem syslog+udp://siem.example:514
"""

from __future__ import annotations

from sqlalchemy.orm import sessionmaker

from hq.siem.forwarder import SiemForwarder
from hq.siem.sinks import SinkConfigError, open_sink

__all__ = ["SiemForwarder", "SinkConfigError", "build_forwarder"]


def build_forwarder(url: str | None, sessions: sessionmaker) -> SiemForwarder | None:
    """The forwarder for ``--siem URL`` (SinkConfigError names what is wrong with it), or None."""
    if not url:
        return None
    return SiemForwarder(sessions=sessions, sink=open_sink(url))
