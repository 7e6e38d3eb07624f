"""Pure judgements that are not Sigma rules: the policy-driven `scripting` and `remote_access` signals.

No I/O here (DESIGN.md: a rule never does I/O): observations in, findings out.
"""

from __future__ import annotations

from collections.abc import Iterable

from agent.findings import Finding, process_finding_fields
from agent.sensors.network import unapproved_clients
from agent.sensors.observations import NetworkConnection, RemoteSession

SCRIPTING_RULE = "tg.scripting.unapproved_client"
REMOTE_SESSION_RULE = "tg.remote_access.inbound_session"
REMOTE_KINDS = frozenset({"rdp", "vnc", "ssh", "remote_tool"})


def judge_connections(conns: Iterable[NetworkConnection], approved_programs: Iterable[str]) -> list[Finding]:
    """A program not on policy's approved list talking to a protected host (the waybill system)."""
    findings = []
    for conn in unapproved_clients(conns, approved_programs):
        fields = process_finding_fields(conn.process)
        fields.update({"destination.ip": conn.remote_ip, "destination.port": conn.remote_port,
                       "destination.domain": conn.remote_hostname})
        findings.append(Finding(rule=SCRIPTING_RULE, title="Unapproved program talks to the waybill system",
                                severity="high", category="scripting", fields=fields,
                                observed_at=conn.observed_at))
    return findings


def judge_session(session: RemoteSession) -> Finding | None:
    """An inbound remote session (RDP, VNC, SSH from elsewhere) on an outlet PC."""
    if session.kind not in REMOTE_KINDS:
        return None
    return Finding(
        rule=REMOTE_SESSION_RULE,
        title=f"Inbound remote session ({session.kind})",
        severity="high",
        category="remote_access",
        fields={"session.kind": session.kind, "source.ip": session.source_ip, "source.domain": session.host,
                "user.name": session.user},
        observed_at=session.observed_at,
    )
