import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.hqclient import (
    HqBadAnswer,
    HqClient,
    HqError,
    HqRejected,
    HqThrottled,
    HqTooLarge,
    HqUnavailable,
    parse_retry_after,
)
from agent.signing import parse_signed_headers, verify_request
from tests.scripted_hq import Answer, ScriptedHq

KEY = Ed25519PrivateKey.generate()


@pytest.fixture
def hq():
    with ScriptedHq() as server:
        yield server


def client_for(hq, timeout_s=5.0):
    counter = iter(range(1, 10**6))
    return HqClient(hq.url, device_id="dev-1", key=KEY, ca_file=None, next_seq=lambda: next(counter),
                    timeout_s=timeout_s)


def test_requests_are_signed_with_increasing_sequence_numbers(hq):
    client = client_for(hq)
    client.request("POST", "/v1/heartbeat", {"a": 1})
    client.request("POST", "/v1/heartbeat", {"a": 2})
    seen = hq.requests_to("/v1/heartbeat")
    seqs = []
    for request in seen:
        signed = parse_signed_headers(request.headers)
        verify_request(KEY.public_key(), signed, method="POST", path="/v1/heartbeat", body=request.body)
        seqs.append(signed.seq)
    assert seqs == sorted(seqs) and len(set(seqs)) == 2


@pytest.mark.parametrize("answer,error", [
    (Answer(status=500, body={"error": "boom"}), HqUnavailable),
    (Answer(status=503, body=b"<html>busy</html>"), HqUnavailable),
    (Answer(status=200, body=b"not json at all"), HqBadAnswer),
    (Answer(status=200, body=b"[1, 2]"), HqBadAnswer),
    (Answer(status=413, body=b""), HqTooLarge),
    (Answer(status=302, body={}), HqBadAnswer),
])
def test_each_kind_of_bad_answer_has_its_own_outcome(hq, answer, error):
    hq.then("/v1/heartbeat", answer)
    with pytest.raises(error):
        client_for(hq).request("POST", "/v1/heartbeat", {})


def test_429_carries_retry_after(hq):
    hq.then("/v1/events", Answer(status=429, body={}, headers={"Retry-After": "17"}))
    with pytest.raises(HqThrottled) as caught:
        client_for(hq).request("POST", "/v1/events", {"events": []})
    assert caught.value.retry_after_s == 17


def test_a_hanging_hq_times_out_as_unavailable(hq):
    hq.then("/v1/heartbeat", Answer(delay_s=3.0, body={}))
    started = time.monotonic()
    with pytest.raises(HqUnavailable):
        client_for(hq, timeout_s=0.5).request("POST", "/v1/heartbeat", {})
    assert time.monotonic() - started < 2.5


def test_a_refusal_carries_its_code(hq):
    hq.then("/v1/heartbeat", Answer(status=401, body={"error": "device_revoked", "detail": "revoked by analyst"}))
    with pytest.raises(HqRejected) as caught:
        client_for(hq).request("POST", "/v1/heartbeat", {})
    assert (caught.value.status, caught.value.code) == (401, "device_revoked")


def test_a_stale_timestamp_refusal_corrects_the_clock_and_retries_once(hq):
    server_time = time.time() + 3600
    hq.then("/v1/heartbeat", Answer(status=401, body={"error": "stale_timestamp", "server_time": server_time}))
    client = client_for(hq)
    client.request("POST", "/v1/heartbeat", {})
    first, second = hq.requests_to("/v1/heartbeat")
    assert int(second.headers["X-TG-Timestamp"]) - int(first.headers["X-TG-Timestamp"]) > 3500


def test_https_without_a_pinned_ca_is_refused_before_any_request():
    with pytest.raises(HqError, match="pin"):
        HqClient("https://hq.example", device_id="d", key=KEY, ca_file=None, next_seq=lambda: 1)
    with pytest.raises(HqError, match="loopback"):
        HqClient("http://hq.example", device_id="d", key=KEY, ca_file=None, next_seq=lambda: 1)


def test_retry_after_accepts_seconds_and_dates_and_caps_them():
    assert parse_retry_after("5", now=0) == 5
    assert parse_retry_after("999999", now=0) == 600
    assert parse_retry_after(None, now=0) == 60
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480) == pytest.approx(30, abs=1)
    assert parse_retry_after("soon", now=0) == 60
