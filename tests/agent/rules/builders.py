"""Build observations and small rules for the rule-engine tests (no I/O, no mocks)."""

from __future__ import annotations

import textwrap
import uuid

from agent.findings import Finding
from agent.rules import RuleSet
from agent.sensors.observations import NetworkConnection, ProcessInfo, ProcessStarted


def _basename(path: str) -> str:
    return path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def info(
    exe: str | None = None,
    cmdline: str | tuple[str, ...] = (),
    *,
    name: str | None = None,
    pid: int = 4242,
    ppid: int | None = 4000,
    user: str | None = None,
    sha256: str | None = None,
    original_file_name: str | None = None,
    company: str | None = None,
    product: str | None = None,
    description: str | None = None,
) -> ProcessInfo:
    args = (cmdline,) if isinstance(cmdline, str) else tuple(cmdline)
    return ProcessInfo(
        pid=pid,
        name=name or (_basename(exe) if exe else "unknown"),
        ppid=ppid,
        exe=exe,
        cmdline=args,
        user=user,
        exe_sha256=sha256,
        original_file_name=original_file_name,
        company=company,
        product=product,
        description=description,
    )


def proc(
    exe: str | None = None,
    cmdline: str | tuple[str, ...] = (),
    *,
    parent: ProcessInfo | None = None,
    parent_exe: str | None = None,
    parent_cmdline: str | tuple[str, ...] = (),
    **fields: object,
) -> ProcessStarted:
    """A ProcessStarted for `exe`; cmdline may be the whole command line as one string."""
    if parent is None and parent_exe is not None:
        parent = info(parent_exe, parent_cmdline, pid=4000, ppid=1)
    return ProcessStarted(process=info(exe, cmdline, **fields), parent=parent, observed_at=1_800_000_000.0)  # type: ignore[arg-type]


def conn(
    exe: str | None = r"C:\Windows\System32\svchost.exe",
    *,
    hostname: str | None = None,
    remote_ip: str = "203.0.113.7",
    remote_port: int = 443,
    local_ip: str = "192.168.1.20",
    local_port: int = 51515,
    direction: str = "outbound",
    protocol: str = "tcp",
    cmdline: str | tuple[str, ...] = (),
) -> NetworkConnection:
    return NetworkConnection(
        process=info(exe, cmdline) if exe else None,
        local_ip=local_ip,
        local_port=local_port,
        remote_ip=remote_ip,
        remote_port=remote_port,
        direction=direction,
        status="ESTABLISHED",
        observed_at=1_800_000_000.0,
        remote_hostname=hostname,
        protocol=protocol,
    )


def rule_text(detection: str, *, category: str = "process_creation", title: str = "Test rule",
              rule_id: str | None = None, extra: str = "") -> str:
    """A complete rule around a `detection:` body written at column 0 (dedented here)."""
    body = textwrap.indent(textwrap.dedent(detection).strip("\n"), "    ")
    head = textwrap.dedent(f"""\
        title: {title}
        id: {rule_id or uuid.uuid4()}
        status: test
        level: high
        logsource:
            category: {category}
        """)
    return head + textwrap.dedent(extra) + "detection:\n" + body + "\n"


def ruleset(*texts: str) -> RuleSet:
    rules, errors = RuleSet.from_texts([(f"rule{i}.yml", t) for i, t in enumerate(texts)])
    assert errors == [], errors
    return rules


def hits(detection: str, event: ProcessStarted | NetworkConnection) -> bool:
    """Does a one-rule set built from `detection` match `event`?"""
    if isinstance(event, NetworkConnection):
        return bool(ruleset(rule_text(detection, category="network_connection")).match_connection(event))
    return bool(ruleset(rule_text(detection)).match_process(event))


def titles(findings: list[Finding]) -> set[str]:
    return {f.title for f in findings}
