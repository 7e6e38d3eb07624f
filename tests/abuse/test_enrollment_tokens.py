"""Enrollment tokens used where they should not work: expired, used up, made up, or raced by many
PCs at once for the last uses. A token never enrolls more PCs than it allows, and never into
another outlet."""

from __future__ import annotations

import concurrent.futures
import json
import time

import pytest

from tests.abuse.conftest import InProcessHq
from tests.hq.device_client import DeviceClient, pinned_client
from tests.hq_server import HqServer


def refused(response) -> bool:
    return response.status_code == 403 and response.json()["error"] == "invalid_token"


def test_an_expired_token_enrolls_nobody(hq: InProcessHq) -> None:
    token = hq.token(ttl_s=60, now=time.time() - 61)
    assert refused(DeviceClient(hq.client).enroll(token))


def test_a_used_up_token_enrolls_nobody_more(hq: InProcessHq) -> None:
    token = hq.token(uses=2)
    assert [DeviceClient(hq.client).enroll(token).status_code for _ in range(2)] == [200, 200]
    assert refused(DeviceClient(hq.client).enroll(token))


def test_made_up_and_mangled_tokens_enroll_nobody(hq: InProcessHq) -> None:
    real = hq.token()
    for token in ("", "x" * 256, real[:-1], real + "A", real.upper(), " " + real, "../" + real):
        response = DeviceClient(hq.client).enroll(token)
        assert response.status_code in (403, 422), (token, response.text)
    assert DeviceClient(hq.client).enroll(real).status_code == 200


def test_the_outlet_comes_from_the_token_not_from_what_the_pc_says(hq: InProcessHq) -> None:
    device = DeviceClient(hq.client)
    token = hq.token(outlet="outlet-small")
    body = {"token": token, "outlet_id": "outlet-hq", "outlet": "outlet-hq"}
    from tests.hq.device_client import enrollment_body

    response = hq.client.post("/v1/enroll", json={**enrollment_body(token, device.key), **body})
    assert response.status_code == 200 and response.json()["outlet_id"] == "outlet-small"


@pytest.mark.parametrize("uses", [1, 3])
def test_many_pcs_racing_for_a_tokens_last_uses_enroll_exactly_that_many(db_url: str, tmp_path, uses: int) -> None:
    with HqServer(db_url, data_dir=tmp_path / "hq") as hq:
        token = hq.cli("token", "create", "--outlet", "o-race", "--uses", str(uses)).stdout.strip().splitlines()[-1]

        def enroll(_: int) -> int:
            with pinned_client(hq.url, str(hq.ca_file)) as http:
                return DeviceClient(http).enroll(token).status_code

        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(enroll, range(24)))
        devices = [json.loads(line) for line in hq.cli("devices", "--json").stdout.splitlines()]
    assert statuses.count(200) == uses and statuses.count(403) == 24 - uses, statuses
    assert len(devices) == uses
