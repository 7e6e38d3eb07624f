"""The finding for a file full of customer data: counts, hash, size, path, process. No values.

Not even in the names: the path and the program go through `agent.redact`.
"""

from __future__ import annotations

from agent.exports.counter import PiiResult
from agent.findings import Finding
from agent.redact import redact
from agent.sensors.observations import ProcessInfo

RULE = "export.bulk_customer_data"


def _title(result: PiiResult) -> str:
    counts = result.counts
    at_least = "at least " if result.sampled else ""
    return (
        f"Bulk customer data in a file: {at_least}{counts.get('mobile', 0)} mobile numbers, "
        f"{counts.get('id_card', 0)} ID numbers, {result.pii_rows} rows with a phone and an address or name"
    )


def export_finding(*, severity: str, path: str, size: int, sha256: str, result: PiiResult, removable: bool,
                   process: ProcessInfo | None = None, incomplete: str | None = None) -> Finding:
    fields: dict[str, object] = {
        "file.path": redact(path),  # exports are often named after a customer or a waybill
        "file.size": size,
        "file.hash.sha256": sha256,
        "file.removable": removable,
        "pii.counts": dict(result.counts),
        "rows": result.rows,
        "pii.rows": result.pii_rows,
        "pii.headers": list(result.headers),
    }
    if result.estimated:
        fields["pii.estimated"] = list(result.estimated)  # sampled distinct counts, see distinct.py
    if result.sampled:
        # After the critical verdict the rows were sampled (agent/exports/sampling.py): rows and
        # pii.rows are scaled estimates, pii.counts the distinct values of the rows counted.
        fields["scan.sampled"] = True
    if incomplete:
        fields["scan.incomplete"] = redact(incomplete)  # may name a member of an archive
    if process is not None:
        fields["process.pid"] = process.pid
        fields["process.name"] = redact(process.name)
        if process.exe:
            fields["process.executable"] = redact(process.exe)
    return Finding(rule=RULE, title=_title(result), severity=severity, category="export", fields=fields)
