"""A real scraper started with customer data on its command line: the spooled finding names the tool
and its flags, never the customer's phone, ID, waybill or e-mail, and neither do the agent's logs.

The chain is the service's own: process sensor -> detection with the built-in rules -> responder ->
spool and alert book on disk. All values are generated (tests/agent/exports/exports_fakedata.py).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.alerts import AlertBook
from agent.detection.pipeline import Detection
from agent.detection.respond import Responder
from agent.policy import CurrentPolicy
from agent.rules import builtin_rules
from agent.sensors.process import ProcessSensor
from agent.spool import Spool
from agent.workers import Worker
from tests.agent.exports.exports_fakedata import Generator

CRAWLER_RULE = "695a2670-7a5e-4ba6-b9c9-3fa17c79abdc"  # builtin/tg_proc_scripting_crawler_script.yml


def test_a_scraper_given_customer_data_is_spooled_as_the_tool_without_the_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gen = Generator(seed=41)
    phone, other_phone, id_number, waybill = gen.mobile(), gen.mobile(), gen.id_number(), gen.waybill()
    email = f"{gen.mobile()}@qq.com"
    script = tmp_path / "scrape_waybills.py"
    script.write_text("import time\ntime.sleep(60)\n")
    argv = [sys.executable, str(script), "--phone", f"+86 {phone[:3]}-{phone[3:7]}-{phone[7:]}",
            "--id", id_number, "--waybill", waybill, "--notify", email,
            f"--out={tmp_path}/客户{other_phone}.csv"]
    rules = builtin_rules()
    spool = Spool(tmp_path / "spool.sqlite3")
    alerts = AlertBook(tmp_path, spool.put)
    detection = Detection(policy=CurrentPolicy(None), load_rules=lambda texts: rules,
                          respond=Responder(spool, alerts))
    sensor = ProcessSensor(detection.submit, interval_s=0.05)
    worker = Worker("detection", detection.run, wake=detection.wake)
    sensor.prime()
    sensor.start()
    worker.start()
    scraper = None
    try:
        with caplog.at_level(logging.DEBUG):
            scraper = subprocess.Popen(argv, stdout=subprocess.DEVNULL, start_new_session=True)
            deadline = time.monotonic() + 20
            bodies: list[dict[str, object]] = []
            while time.monotonic() < deadline:
                bodies = [e.body for e in spool.peek(1000) if e.body.get("process.pid") == scraper.pid]
                if bodies:
                    break
                time.sleep(0.1)
    finally:
        if scraper is not None:
            scraper.kill()
            scraper.wait(timeout=10)
        assert sensor.stop(5) and worker.stop(5)
    assert bodies, "the scraper was not spooled as a finding"
    [body] = bodies
    assert body["rule"] == CRAWLER_RULE and body["category"] == "scripting"
    assert str(body["process.name"]).startswith("python")
    assert body["process.command_line"] == (
        f"{sys.executable} {script} --phone <phone> --id <id_number> --waybill <waybill> --notify <email> "
        f"--out={tmp_path}/客户<phone>.csv"
    )

    spool.close()
    secrets = {phone, other_phone, id_number, waybill, email, email.split("@")[0], phone[3:7] + "-" + phone[7:]}
    places = [*tmp_path.glob("spool.sqlite3*"), *tmp_path.glob("alerts*")]
    assert places
    for place in places:
        blob = place.read_bytes()
        assert [s for s in secrets if s.encode("utf-8") in blob] == [], place
    logged = "\n".join(record.getMessage() for record in caplog.records) + caplog.text
    assert [s for s in secrets if s in logged] == []
