"""A small verifier a business-system gateway embeds: ask HQ whether a request is bound.

Depends on urllib3 and the standard library only (not on the HQ server's packages):

    verifier = GatewayVerifier("https://hq.example:8443", key=GATEWAY_KEY, ca_file="hq-ca.pem")
    decision = verifier.verify(method, url, request_headers, outlet="0571-XH")
    if not decision.allow:
        return 403, decision.reason
    ... serve the request ...
    verifier.report_query(decision, waybill_outlet="0571-XX")   # batched, in the background

Hostile or empty headers are refused locally (no round trip to HQ) with the reason HQ would
give; anything HQ cannot be asked about fails closed (``hq_unavailable``). Reports of served
queries are queued and posted in batches by a named background thread; a full queue drops the
oldest and counts it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError

log = logging.getLogger(__name__)

HEADER_SESSION = "X-TG-Session"
HEADER_PROOF = "X-TG-Proof"
MAX_HEADER_CHARS = 2048
REPORT_BATCH = 500
REPORT_QUEUE = 50_000
REPORT_PERIOD_S = 0.5


class KeyRefused(ValueError):
    """HQ does not know (or revoked) this gateway's key."""


@dataclass(frozen=True)
class GatewayDecision:
    allow: bool
    reason: str
    detail: str = ""
    staff: str | None = None
    device: str | None = None
    outlet: str | None = None
    session_id: str | None = None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name) or headers.get(name.lower())
    return value if value else None


class GatewayVerifier:
    def __init__(self, hq_url: str, *, key: str, ca_file: str | None, timeout_s: float = 2.0,
                 pool_size: int = 16) -> None:
        self._url = hq_url.rstrip("/")
        self._headers = {"X-TG-Gateway-Key": key, "Content-Type": "application/json"}
        timeout = urllib3.Timeout(connect=timeout_s, read=timeout_s)
        if self._url.startswith("https://"):
            self._pool = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=ca_file, timeout=timeout,
                                             retries=False, maxsize=pool_size)
        else:
            self._pool = urllib3.PoolManager(timeout=timeout, retries=False, maxsize=pool_size)
        self._reports: deque[dict[str, Any]] = deque(maxlen=REPORT_QUEUE)
        self.reports_dropped = 0
        self._stop = threading.Event()
        self._reporter = threading.Thread(target=self._report_loop, name="tg-gateway-reports", daemon=True)
        self._reporter.start()

    def close(self) -> None:
        self._stop.set()
        self._reporter.join(5.0)
        self._flush_reports()
        self._pool.clear()

    def verify(self, method: str, url: str, headers: Mapping[str, str], *, account: str | None = None,
               outlet: str | None = None, waybill_outlet: str | None = None) -> GatewayDecision:
        """Allow or deny one business request by its binding headers."""
        session, proof = _header(headers, HEADER_SESSION), _header(headers, HEADER_PROOF)
        if session is not None and len(session) > MAX_HEADER_CHARS:
            return GatewayDecision(False, "malformed_token", "the session header is too long")
        if proof is not None and len(proof) > MAX_HEADER_CHARS:
            return GatewayDecision(False, "malformed_proof", "the proof header is too long")
        body: dict[str, Any] = {"method": method, "url": url, "session": session, "proof": proof}
        for name, value in (("account", account), ("outlet", outlet), ("waybill_outlet", waybill_outlet)):
            if value is not None:
                body[name] = value
        try:
            answer = self._post("/v1/verify", body)
        except KeyRefused:
            log.error("HQ refused this gateway's key; every request is denied until it is replaced")
            return GatewayDecision(False, "gateway_key_refused", "HQ refused the gateway key; denied")
        except (HTTPError, OSError, ValueError) as exc:
            log.warning("HQ verify unavailable, denying: %s", exc)
            return GatewayDecision(False, "hq_unavailable", "HQ could not be asked; denied")
        return GatewayDecision(allow=answer.get("decision") == "allow", reason=str(answer.get("reason", "")),
                               detail=str(answer.get("detail", "")), staff=answer.get("staff"),
                               device=answer.get("device"), outlet=answer.get("outlet"),
                               session_id=answer.get("session_id"))

    def report_query(self, decision: GatewayDecision, *, waybill_outlet: str) -> None:
        """Tell HQ which outlet the waybill served under this decision belongs to (queued)."""
        if not decision.allow or decision.staff is None:
            return
        if len(self._reports) == self._reports.maxlen:
            self.reports_dropped += 1
        self._reports.append({"staff": decision.staff, "device": decision.device, "outlet": decision.outlet,
                              "waybill_outlet": waybill_outlet, "at": time.time()})

    def flush(self) -> None:
        self._flush_reports()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._pool.request("POST", self._url + path, body=json.dumps(body).encode(),
                                      headers=self._headers)
        if response.status == 401:
            raise KeyRefused(f"HQ answered 401 to {path}")
        if response.status != 200:
            raise ValueError(f"HQ answered {response.status} to {path}: {response.data[:200]!r}")
        data = json.loads(response.data)
        if not isinstance(data, dict):
            raise ValueError(f"HQ answered {path} with JSON that is not an object")
        return data

    def _report_loop(self) -> None:
        while not self._stop.wait(REPORT_PERIOD_S):
            try:
                self._flush_reports()
            except Exception as exc:
                log.warning("reporting served queries to HQ failed (%s); %d queued, retrying", exc, len(self._reports))

    def _flush_reports(self) -> None:
        while self._reports:
            batch = [self._reports.popleft() for _ in range(min(REPORT_BATCH, len(self._reports)))]
            try:
                self._post("/v1/activity", {"queries": batch})
            except (HTTPError, OSError, ValueError):
                self._reports.extendleft(reversed(batch))
                raise
