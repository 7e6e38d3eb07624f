"""`terminal-guard scan` without --files: judge what runs, who is connected and to where, right now."""

from __future__ import annotations

from agent.detection.assembly import rules_loader
from agent.detection.dedupe import Dedupe
from agent.detection.judge import judge_connections, judge_session
from agent.findings import Finding
from agent.policy import PolicyBody
from agent.sensors.connections import default_socket_table
from agent.sensors.network import NetworkSensor
from agent.sensors.process import ProcessSensor
from agent.sensors.sessions import SessionSensor


def scan_running_system(body: PolicyBody) -> list[Finding]:
    rules = rules_loader(body.rules)
    findings: list[Finding] = []
    for started in ProcessSensor(lambda _: None).snapshot():
        findings.extend(rules.match_process(started))
    sockets = default_socket_table()  # one owner cache serves both sensors
    connections = NetworkSensor(lambda _: None, protected_hosts=body.protected_hosts, lister=sockets).current()
    for conn in connections:
        findings.extend(rules.match_connection(conn))
    findings.extend(judge_connections(connections, body.approved_programs))
    for session in SessionSensor(lambda _: None, lister=sockets).current():
        judged = judge_session(session)
        if judged:
            findings.append(judged)
    dedupe = Dedupe()
    return [f for f in findings if dedupe.fresh(f)]
