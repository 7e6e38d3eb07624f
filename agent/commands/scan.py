"""`terminal-guard scan`: one-shot scan with the built-in and configured rules.

Exit 0 nothing found, 1 findings, 2 error. Findings print in the `scan --json` shape of
DESIGN.md: counts, hashes and paths, never the customer data itself.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from agent.commands.common import CommandError, emit
from agent.config import AgentConfig
from agent.enrollment import Enrollment, EnrollmentError
from agent.findings import Finding
from agent.policy import CurrentPolicy, PolicyBody, PolicyError, PolicyStore
from agent.service import POLICY_FILE


def policy_in_force(config: AgentConfig) -> PolicyBody:
    """The last good signed policy of this PC, or the defaults when there is none."""
    current = CurrentPolicy(None)
    try:
        enrollment = Enrollment.load(config.agent.state_dir)
        if enrollment is not None:
            current.attach(PolicyStore(config.agent.state_dir / POLICY_FILE, enrollment.policy_public_key))
    except (EnrollmentError, PolicyError) as exc:
        print(f"terminal-guard: using default policy: {exc}", file=sys.stderr)
    return current.body


def scan_files(paths: list[str], body: PolicyBody, *,
               exact: bool = False) -> tuple[list[Finding], list[tuple[str, str]]]:
    from agent.exports.sampling import DEFAULT_SAMPLING, EXACT
    from agent.exports.scan import scan_paths
    from agent.exports.volumes import default_volumes, removable_checker

    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise CommandError(f"scan: no such file or folder: {', '.join(missing)}")
    report = scan_paths([Path(p) for p in paths], thresholds=body.thresholds,
                        removable=removable_checker(default_volumes()), sampling=EXACT if exact else DEFAULT_SAMPLING)
    return report.findings, report.skipped


def scan_system(body: PolicyBody) -> list[Finding]:
    from agent.detection.oneshot import scan_running_system

    return scan_running_system(body)


def run_scan(config: AgentConfig, *, files: list[str] | None, as_json: bool, exact: bool = False) -> int:
    body = policy_in_force(config)
    skipped: list[tuple[str, str]] = []
    if files:
        findings, skipped = scan_files(files, body, exact=exact)
    else:
        findings = scan_system(body)
    for finding in findings:
        record = finding.to_dict()
        text = f"[{finding.severity}] {finding.category} {finding.title} " + json.dumps(
            {k: v for k, v in record.items() if "." in k or k == "rows"}, ensure_ascii=False)
        emit(record, as_json=as_json, text=text)
    for path, reason in skipped:
        print(f"terminal-guard: skipped {path}: {reason}", file=sys.stderr)
    return 1 if findings else 0
