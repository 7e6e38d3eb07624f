"""From counts to a severity, using the policy's thresholds. The decisions, in one place:

- *bulk* is the larger of distinct mobile numbers and distinct valid resident ID numbers: either
  identifies people one by one, and an ID list is as saleable as a phone list.
- critical: bulk or PII rows (phone + address/name in one row) reach `export_critical` (1,000).
- high: bulk reaches `export_high_mobiles` (50) or PII rows reach `export_high_rows` (20); or a
  file with a waybill column holds `export_critical` distinct waybill numbers (waybill numbers sold
  in bulk were part of the 2020 case; numeric waybill shapes alone are too ambiguous to count).
- medium: a header names a personal field (phone, name, address, ID) and bulk or PII rows reach
  `MEDIUM_MIN` (10) - a small export that is plainly customer data.
- otherwise no finding: a colleague list of five, a price list, an inventory sheet.
Landlines never raise severity: business numbers fill price lists and supplier sheets.
"""

from __future__ import annotations

from agent.exports.counter import PiiResult
from agent.policy import Thresholds

MEDIUM_MIN = 10


def classify(result: PiiResult, thresholds: Thresholds) -> str | None:
    bulk = max(result.counts.get("mobile", 0), result.counts.get("id_card", 0))
    if bulk >= thresholds.export_critical or result.pii_rows >= thresholds.export_critical:
        return "critical"
    if bulk >= thresholds.export_high_mobiles or result.pii_rows >= thresholds.export_high_rows:
        return "high"
    if "waybill" in result.headers and result.counts.get("waybill", 0) >= thresholds.export_critical:
        return "high"
    if result.personal_header and max(bulk, result.pii_rows) >= min(MEDIUM_MIN, thresholds.export_high_mobiles):
        return "medium"
    return None
