"""Respond to a finding: spool it for HQ and raise the staff alert its severity calls for."""

from __future__ import annotations

import logging

from agent.alerts import AlertBook
from agent.detection.dedupe import Dedupe
from agent.findings import Finding
from agent.spool import Spool

log = logging.getLogger(__name__)


class Responder:
    def __init__(self, spool: Spool, alerts: AlertBook, dedupe: Dedupe | None = None) -> None:
        self._spool = spool
        self._alerts = alerts
        self._dedupe = dedupe or Dedupe()

    def __call__(self, finding: Finding) -> None:
        if not self._dedupe.fresh(finding):
            return
        # The rule and category only: paths and command lines may carry customer data, the log must not.
        log.info("finding %s (%s, %s)", finding.rule, finding.category, finding.severity)
        self._spool.put(finding.to_event())
        self._alerts.add(finding)
