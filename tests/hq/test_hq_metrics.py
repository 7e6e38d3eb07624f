"""GET /metrics: Prometheus text, only with a bearer token of scope metrics."""

from __future__ import annotations

import re
import time

from hq.console.api_tokens import create_api_token, revoke_api_tokens
from tests.hq.conftest import Hq


def token(hq: Hq, name: str = "prometheus") -> str:
    with hq.state.sessions.begin() as session:
        return create_api_token(session, name=name, scope="metrics", now=time.time())


def scrape(hq: Hq, bearer: str | None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    response = hq.client.get("/metrics", headers=headers)
    return response.status_code, response.text


def value(text: str, series: str) -> float:
    found = re.search(rf"^{re.escape(series)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert found, f"{series} not in:\n{text}"
    return float(found.group(1))


def test_metrics_need_a_valid_unrevoked_token(hq: Hq) -> None:
    assert scrape(hq, None)[0] == 401
    assert scrape(hq, "tgm_made-up")[0] == 401
    response = hq.client.get("/metrics", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
    good = token(hq)
    assert scrape(hq, good)[0] == 200
    with hq.state.sessions.begin() as session:
        revoke_api_tokens(session, name="prometheus", now=time.time())
    hq.client.app.state.metrics.tokens.clear()  # the positive cache (60 s) would otherwise still accept it
    assert scrape(hq, good)[0] == 401


def test_metrics_count_devices_heartbeats_and_latency(hq: Hq) -> None:
    online = hq.device()
    hq.device()  # enrolled, never beats: silent once overdue, online until then
    for _ in range(3):
        assert online.heartbeat().status_code == 200
    assert online.signed("POST", "/v1/heartbeat", {"bad": 1}, seq=1).status_code == 401
    hq.state.flush()
    status, text = scrape(hq, token(hq))
    assert status == 200
    assert value(text, 'tg_devices{status="online"}') == 2
    assert value(text, 'tg_devices{status="revoked"}') == 0
    assert value(text, "tg_heartbeats_total") == 3
    assert value(text, 'tg_http_requests_total{route="heartbeat",code="401"}') == 1
    assert value(text, 'tg_http_request_duration_seconds_count{route="heartbeat"}') == 4
    assert value(text, 'tg_http_request_duration_seconds_bucket{route="heartbeat",le="+Inf"}') == 4
    assert value(text, 'tg_verify_duration_seconds_count{route="verify"}') == 0
    assert value(text, "tg_policy_version") == 1
    assert "# TYPE tg_devices gauge" in text


def test_unknown_paths_share_one_label(hq: Hq) -> None:
    for n in range(5):
        hq.client.get(f"/scan/{n}")
    _, text = scrape(hq, token(hq))
    assert value(text, 'tg_http_requests_total{route="other",code="404"}') == 5
    assert "/scan/" not in text
