"""The console in Debian's chromium (Selenium + chromedriver) against a real `terminal-guard-hq serve`.

Chromium trusts exactly the HQ server's key (--ignore-certificate-errors-spki-list with its
SPKI hash), so the Secure cookies and the TLS pages are the real ones. Every page is saved as a
screenshot under test-artifacts/console/. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from agent.events import Event
from hq.console.analysts import add_analyst
from hq.db import make_engine, make_sessions
from hq.staff.passwords import hash_password
from hq.staff.store import add_staff
from hq.store.events import record_hq_event
from hq.store.tokens import create_token
from tests.hq.device_client import DeviceClient, pinned_client
from tests.hq_server import ROOT, HqServer
from tests.pg import PostgresServer

ARTIFACTS = ROOT / "test-artifacts" / "console"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1800")
PASSWORD = "browser-pw-" + base64.urlsafe_b64encode(hashlib.sha256(str(time.time()).encode()).digest()[:9]).decode()
WAIT_S = 30  # generous: the machine running CI is shared


def wait_until(driver: WebDriver, check: Any) -> Any:
    """Wait for ``check(driver)``; a page being replaced under it (a form post) just means "not yet"."""
    return WebDriverWait(driver, WAIT_S, ignored_exceptions=(NoSuchElementException,
                                                             StaleElementReferenceException)).until(check)


def spki_hash(cert_file: Path) -> str:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


class Fleet:
    """A real HQ with analysts, staff, PCs, findings and a sharing alert."""

    def __init__(self, server: HqServer, engine_name: str) -> None:
        self.server = server
        self.engine_name = engine_name
        self.http = pinned_client(server.url, str(server.ca_file))
        self.devices: dict[str, DeviceClient] = {}
        self.engine: Any = None

    def cli(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run([*self.server._base(), *args], input=stdin, capture_output=True, text=True,
                              timeout=60, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def enroll(self, outlet: str, hostname: str) -> DeviceClient:
        with make_sessions(self.engine).begin() as session:
            token = create_token(session, outlet_id=outlet, uses=1, ttl_s=3600, now=time.time())
        device = DeviceClient(self.http)
        assert device.enroll(token, hostname=hostname).status_code == 200
        assert device.heartbeat(hostname=hostname, staff=None, interval_s=10).status_code == 200
        self.devices[hostname] = device
        return device

    def build(self) -> None:
        # The first analyst through the real command line; the rest straight into the database (faster).
        self.cli("analyst", "add", "--id", "ada", "--role", "admin", stdin=PASSWORD + "\n")
        self.engine = make_engine(self.server.db_url)
        with make_sessions(self.engine).begin() as session:
            for analyst, role in (("anton", "analyst"), ("vera", "viewer")):
                add_analyst(session, analyst_id=analyst, role=role, password=PASSWORD, now=time.time())
            add_staff(session, staff_id="S1001", outlet_id="0571-XH", name="Test Staff",
                      password_hash=hash_password("staff-password-1"), now=time.time())
        desk = self.enroll("0571-XH", "pc-front-desk")
        self.enroll("0571-XH", "pc-back-office")
        self.enroll("0755-NS", "pc-counter")
        desk.send_events([
            Event("finding", {"rule": "remote_tool_anydesk", "title": "AnyDesk running while staff signed in",
                              "severity": "critical", "category": "remote_access", "process.name": "AnyDesk.exe"},
                  priority=3),
            Event("finding", {"rule": "bulk_export", "title": "Export of 812 mobiles", "severity": "high",
                              "category": "export", "file.path": "C:\\Users\\staff\\Desktop\\out.xlsx",
                              "pii.counts": {"mobile": 812}, "rows": 400}, priority=2),
        ])
        with make_sessions(self.engine).begin() as session:
            record_hq_event(session, device_id=desk.device_id, kind="alert.sharing.two_pcs", now=time.time(),
                            body={"rule": "two_pcs", "staff_id": "S1001", "outlet_id": "0571-XH",
                                  "evidence": {"devices": 2}})


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fleet(request: pytest.FixtureRequest) -> Iterator[Fleet]:
    db_url = None
    server_pg: PostgresServer | None = None
    if request.param == "postgresql":
        server_pg = request.getfixturevalue("postgres_server")
        db_url = server_pg.create_database()
    with HqServer(db_url) as server:
        made = Fleet(server, request.param)
        made.build()
        yield made
        made.http.close()
        made.engine.dispose()
    if server_pg is not None and db_url is not None:
        server_pg.drop_database(db_url)


@pytest.fixture(scope="module")
def driver(fleet: Fleet) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="tg-chromium-")
    for flag in (*FLAGS, f"--user-data-dir={profile}",
                 f"--ignore-certificate-errors-spki-list={spki_hash(fleet.server.data_dir / 'server.pem')}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(30)
    yield browser
    browser.quit()


class Page:
    def __init__(self, driver: WebDriver, fleet: Fleet) -> None:
        self.driver = driver
        self.fleet = fleet

    def open(self, path: str) -> None:
        self.driver.get(self.fleet.server.url + path)

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert self.driver.save_screenshot(str(ARTIFACTS / f"{self.fleet.engine_name}-{name}.png"))

    def find(self, css: str) -> Any:
        return WebDriverWait(self.driver, WAIT_S).until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
        )

    def text(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "body").text)

    def sign_in(self, analyst: str, password: str = PASSWORD, *, expect_ok: bool = True) -> None:
        self.driver.delete_all_cookies()
        self.open("/console/")
        self.find("#analyst_id").send_keys(analyst)
        self.driver.find_element(By.ID, "password").send_keys(password)
        self.driver.find_element(By.ID, "sign-in").click()
        # Wait for the answer to the post, so the next navigation does not race the session cookie.
        self.find("form.who" if expect_ok else "#login-error")

    def confirm(self) -> None:
        WebDriverWait(self.driver, WAIT_S).until(expected_conditions.alert_is_present())
        self.driver.switch_to.alert.accept()


@pytest.fixture
def page(driver: WebDriver, fleet: Fleet, request: pytest.FixtureRequest) -> Iterator[Page]:
    made = Page(driver, fleet)
    yield made
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:  # what the browser showed when it failed
        made.shot(f"FAILED-{request.node.name.split('[')[0]}")
        (ARTIFACTS / f"{fleet.engine_name}-FAILED-{request.node.name.split('[')[0]}.html").write_text(
            driver.page_source)


def test_sign_in_and_the_fleet(page: Page) -> None:
    page.sign_in("ada", "wrong-password-here", expect_ok=False)
    assert "Wrong analyst id or password" in page.find("#login-error").text
    page.shot("login-refused")
    page.sign_in("ada")
    page.find("#count-online")
    assert page.driver.current_url.endswith("/console/")
    assert page.find("#count-online").text == "3"
    assert "0571-XH" in page.find("#outlets").text and page.driver.find_elements(By.CSS_SELECTOR, "svg.chart")
    page.shot("fleet")
    page.open("/console/devices")
    assert "pc-counter" in page.find("#devices").text
    page.shot("devices")
    page.open("/console/outlets/0571-XH")
    assert "pc-counter" not in page.find("#devices").text
    page.shot("outlet")


def test_the_live_queue_shows_a_new_alert_without_reload_and_an_analyst_acknowledges_it(page: Page) -> None:
    page.sign_in("anton")
    page.open("/console/alerts")
    queue = page.find("#alert-queue")
    assert "AnyDesk running" in queue.text
    page.driver.execute_script("window.__sameDocument = true;")
    page.fleet.devices["pc-counter"].send_events([
        Event("finding", {"rule": "tunnel_frp", "title": "frp tunnel to an outside host", "severity": "high",
                          "category": "tunnel", "process.name": "frpc.exe"}, priority=2)])
    wait_until(page.driver, lambda d: "frp tunnel" in d.find_element(By.ID, "alert-queue").text)
    assert page.driver.execute_script("return window.__sameDocument === true;")  # no reload happened
    assert "new alert" in page.find("#live-status").text
    page.shot("alerts-live")
    row = page.driver.find_element(By.XPATH, "//tr[.//a[contains(., 'frp tunnel')]]")
    row.find_element(By.NAME, "note").send_keys("checking with the outlet")
    row.find_element(By.CSS_SELECTOR, "button.ack").click()
    wait_until(page.driver, lambda d: "frp tunnel" not in d.find_element(By.ID, "alert-queue").text)
    page.open("/console/alerts?state=acknowledged")
    acknowledged = page.find("#alert-queue").text
    assert "frp tunnel" in acknowledged and "checking with the outlet" in acknowledged
    page.shot("alerts-acknowledged")
    pk = page.driver.find_element(By.CSS_SELECTOR, "#alert-queue tr[data-pk]").get_attribute("data-pk")
    page.open(f"/console/alerts/{pk}")
    assert "frpc.exe" in page.find("pre.body").text
    page.shot("alert")


def test_an_analyst_revokes_a_pc(page: Page) -> None:
    page.sign_in("anton")
    device = page.fleet.devices["pc-back-office"]
    page.open(f"/console/devices/{device.device_id}")
    assert page.find("#device-status").text == "online"
    page.shot("device")
    page.driver.find_element(By.NAME, "reason").send_keys("stolen PC")
    page.driver.find_element(By.ID, "revoke").click()
    page.confirm()
    wait_until(page.driver, lambda d: d.find_element(By.ID, "device-status").text == "revoked")
    page.shot("device-revoked")
    refused = device.heartbeat(hostname="pc-back-office")
    assert (refused.status_code, refused.json()["error"]) == (401, "device_revoked")


def test_an_analyst_suspends_a_staff_member_from_the_sharing_case(page: Page) -> None:
    page.sign_in("anton")
    page.open("/console/sharing")
    assert "S1001" in page.find("#cases").text
    page.shot("sharing")
    page.open("/console/sharing/S1001")
    page.find("form[action$='/suspend'] input[name=reason]").send_keys("rented account")
    page.driver.find_element(By.CSS_SELECTOR, "form[action$='/suspend'] button").click()
    page.confirm()
    assert page.find("#suspended").text == "suspended"
    page.shot("sharing-case-suspended")
    listed = page.fleet.cli("staff", "list", "--json")
    assert '"S1001"' in listed and "suspend" in listed
    page.driver.find_element(By.CSS_SELECTOR, "form[action$='/clear'] button").click()
    wait_until(page.driver, lambda d: not d.find_elements(By.ID, "suspended"))


def test_an_admin_creates_a_token_seen_once_and_publishes_a_policy(page: Page) -> None:
    page.sign_in("ada")
    page.open("/console/tokens")
    page.find("#token-outlet").send_keys("0571-XH")
    page.driver.find_element(By.ID, "create-token").click()
    token = page.find("#token-value").get_attribute("value")
    assert token and len(token) > 30
    page.shot("token-created")
    assert DeviceClient(page.fleet.http).enroll(token, hostname="pc-new").status_code == 200
    page.open("/console/tokens")
    assert token not in page.driver.page_source
    page.shot("tokens")
    page.open("/console/policies")
    editor = page.find("#policy-text")
    editor.clear()
    editor.send_keys('{"protected_hosts": ["waybill.example"], "thresholds": {"export_critical": 500}}')
    page.driver.find_element(By.ID, "publish").click()
    page.confirm()
    wait_until(page.driver, lambda d: "version=2" in d.current_url)
    assert "waybill.example" in page.find("#policy-body").text
    page.shot("policies")


def test_a_viewer_reads_but_has_no_buttons_and_the_audit_log_has_it_all(page: Page) -> None:
    page.sign_in("vera")
    page.open("/console/alerts?state=all")
    page.find("#alert-queue")
    with pytest.raises(NoSuchElementException):
        page.driver.find_element(By.CSS_SELECTOR, "#alert-queue button.ack")
    page.open("/console/acknowledgements")
    page.find("#acks")
    page.shot("acknowledgements")
    page.open("/console/audit")
    actions = page.find("#analyst-actions").text
    for done in ("device.revoke", "alert.acknowledge", "staff.suspend", "token.create", "policy.publish"):
        assert done in actions
    page.shot("audit")
    page.open("/console/devices/no-such-pc")
    assert "No PC with id" in page.find("#error-message").text
    page.shot("error")


def test_metrics_are_scraped_with_a_cli_token(fleet: Fleet) -> None:
    token = fleet.cli("api-token", "create", "--name", "prometheus").strip().splitlines()[-1]
    response = fleet.http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and 'tg_devices{status="online"}' in response.text
    assert isinstance(response, httpx.Response)
