"""Real tools, not stand-ins: Selenium driving Debian's chromium, a recursive wget, HTTrack and mitmdump
from PyPI, each run against a waybill site on loopback, are reported by the agent's own detection chain;
a plain one-page download is not.

The chain is the service's (agent/detection/assembly.py): the process sensor on the kernel's process
events where it can open them -> detection with the built-in rules -> responder -> spool on disk. The
machine is shared, so only findings about the processes a test started count.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from agent.alerts import AlertBook
from agent.detection.pipeline import Detection, Observation
from agent.detection.respond import Responder
from agent.findings import Finding
from agent.policy import CurrentPolicy
from agent.rules import RuleSet, builtin_rules
from agent.sensors.observations import ProcessStarted
from agent.sensors.proc_events import ProcessEvents
from agent.sensors.process import ProcessSensor
from agent.spool import Spool
from agent.workers import Worker
from tests.agent_process import wait_until

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# Rule ids of agent/rules/builtin/, by file.
WEBDRIVER = "90c0e0f1-63e9-44ee-ba24-e92e24f18b64"  # tg_proc_automation_webdriver
DRIVER_CHILD = "ca6cecaf-2a77-43d9-abef-9d856631f677"  # tg_proc_automation_driver_child_browser
HEADLESS = "65ee4a7c-c926-4306-8423-f31303ff9958"  # tg_proc_automation_headless_browser
REMOTE_DEBUGGING = "120c9e25-d003-4555-a711-822262a5d76a"  # tg_proc_automation_remote_debugging
TEMP_PROFILE = "9fe95aaf-fbd0-4a43-97cd-ee3b45fe3dd1"  # tg_proc_automation_temp_profile
AUTOMATION_FLAGS = "5f2c734c-72d1-440b-ad9d-87218169dcd0"  # tg_proc_automation_browser_flags
MIRRORING = "5a9a6b12-aadf-4afe-b68d-5b0ef5103cc4"  # tg_proc_scripting_website_mirroring
MITMPROXY = "a10e8bcb-0608-4f4d-bf37-9b93e6b4797b"  # tg_proc_interception_mitmproxy
# What one Selenium session may give, at most once each: chromedriver is the WebDriver server, and the
# browser it starts matches the five browser rules. Every browser rule leaves out --type= children
# (renderer, GPU, utility, zygote) and the /bin/sh launcher that Debian's /usr/bin/chromium runs first.
SELENIUM_SESSION_RULES = {WEBDRIVER, DRIVER_CHILD, HEADLESS, REMOTE_DEBUGGING, TEMP_PROFILE, AUTOMATION_FLAGS}
WAYBILLS = [f"YT{7_310_000_000_000 + n * 7919}" for n in range(6)]  # generated, not real
# Loopback answers in microseconds: a whole wget mirror of this site would end before the sensor reads
# /proc (it ticks ~20 ms after the exec). A real site's latency keeps the tool alive for seconds.
PAGE_DELAY_S = 0.15
TOOL_TIMEOUT_S = 60


class _WaybillPages(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(PAGE_DELAY_S)
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class WaybillSite:
    base: str
    paths: list[str]

    def url(self, path: str = "/waybills/index.html") -> str:
        return self.base + path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WaybillSite]:
    root = tmp_path_factory.mktemp("site")
    pages = root / "waybills"
    pages.mkdir()
    links = "".join(f'<li><a href="{w}.html">{w}</a></li>' for w in WAYBILLS)
    (pages / "index.html").write_text(f"<html><body><h1 id='title'>Waybills</h1><ul>{links}</ul></body></html>")
    for waybill in WAYBILLS:
        (pages / f"{waybill}.html").write_text(
            f"<html><body><p id='waybill'>{waybill}</p><a href='index.html'>back</a></body></html>")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(_WaybillPages, directory=str(root)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="waybill-site", daemon=True)
    thread.start()
    try:
        yield WaybillSite(f"http://127.0.0.1:{server.server_address[1]}",
                          ["/waybills/index.html", *(f"/waybills/{w}.html" for w in WAYBILLS)])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class RecordingDetection(Detection):
    """The real detection thread, also keeping each verdict: which processes were judged, and to what."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.verdicts: list[tuple[ProcessStarted, list[Finding]]] = []

    def judge(self, observation: Observation) -> list[Finding]:
        found = super().judge(observation)
        if isinstance(observation, ProcessStarted):
            self.verdicts.append((observation, found))
        return found


class Chain:
    """Sensor, detection and responder wired as the service wires them, spooling to ``state``."""

    def __init__(self, rules: RuleSet, state: Path) -> None:
        self.spool = Spool(state / "spool.sqlite3")
        self.detection = RecordingDetection(policy=CurrentPolicy(None), load_rules=lambda texts: rules,
                                            respond=Responder(self.spool, AlertBook(state, self.spool.put)))
        # As the service builds it; without process events (not root) it polls.
        self.sensor = ProcessSensor(self.detection.submit, interval_s=0.05, events=ProcessEvents.open())
        self.worker = Worker("detection", self.detection.run, wake=self.detection.wake)

    def start(self) -> None:
        self.sensor.prime()
        self.sensor.start()
        self.worker.start()

    def stop(self) -> None:
        """Stop the sensor, let detection judge everything it reported, then stop detection."""
        assert self.sensor.stop(5)
        wait_until(lambda: self.detection.judged + sum(self.detection.dropped.values()) >= self.sensor.reported,
                   20, interval=0.05, what="detection to judge what the sensor reported")
        assert self.worker.stop(10)

    def findings(self, pids: set[int]) -> list[dict[str, Any]]:
        """The spooled findings about the given processes."""
        return [e.body for e in self.spool.peek(100_000) if e.kind == "finding" and e.body.get("process.pid") in pids]

    def judged(self, pid: int) -> list[tuple[ProcessStarted, list[Finding]]]:
        """The verdicts on each observation of ``pid`` so far (its fork and its exec may be two)."""
        return [(started, found) for started, found in list(self.detection.verdicts) if started.process.pid == pid]


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return builtin_rules()


@pytest.fixture
def chain(rules: RuleSet, tmp_path: Path) -> Iterator[Chain]:
    running = Chain(rules, tmp_path)
    running.start()
    try:
        yield running
    finally:
        if running.worker.alive:
            running.stop()
        running.spool.close()


def kill_tree(pid: int, extra: Iterable[psutil.Process] = ()) -> None:
    """SIGKILL a tool's process group and every process of its tree that is still running."""
    procs = list(extra)
    with contextlib.suppress(psutil.NoSuchProcess):
        root = psutil.Process(pid)
        procs += [root, *root.children(recursive=True)]
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(procs, timeout=10)


@contextlib.contextmanager
def running(argv: list[str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start a real tool in a session of its own; it and whatever it started are killed on the way out."""
    tool = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield tool
    finally:
        kill_tree(tool.pid)
        tool.wait(10)


def test_selenium_driving_debian_chromium_is_a_few_automation_findings_not_one_per_child(
        chain: Chain, site: WaybillSite) -> None:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for switch in ("--headless=new", "--no-sandbox"):  # no sandbox: the tests run as root
        options.add_argument(switch)
    service = Service(CHROMEDRIVER, popen_kw={"start_new_session": True})
    driver = webdriver.Chrome(options=options, service=service)
    tree: list[psutil.Process] = []
    try:
        driver.set_page_load_timeout(TOOL_TIMEOUT_S)
        driver.get(site.url("/waybills/index.html"))
        driver.find_element(By.LINK_TEXT, WAYBILLS[2]).click()
        assert driver.find_element(By.ID, "waybill").text == WAYBILLS[2]
        driver_pid = service.process.pid
        tree = psutil.Process(driver_pid).children(recursive=True)
        [browser] = [p for p in psutil.Process(driver_pid).children() if p.exe() == "/usr/lib/chromium/chromium"]
        session = {driver_pid, browser.pid}

        def all_rules_in() -> list[dict[str, Any]] | None:
            bodies = chain.findings(session)
            return bodies if {b["rule"] for b in bodies} >= SELENIUM_SESSION_RULES else None

        wait_until(all_rules_in, 30, what="the Selenium session's automation findings in the spool")
    finally:
        try:
            driver.quit()
        finally:
            kill_tree(service.process.pid, tree)
    chain.stop()

    tree_pids = {p.pid for p in tree} | {driver_pid}
    bodies = chain.findings(tree_pids)
    assert {b["category"] for b in bodies} == {"automation"}
    driver_findings = [b for b in bodies if b["process.pid"] == driver_pid]
    assert len(driver_findings) == 1, [(b["rule"], b["process.executable"], b["process.command_line"])
                                       for b in driver_findings]
    [driver_finding] = driver_findings
    assert driver_finding["rule"] == WEBDRIVER and driver_finding["process.executable"] == CHROMEDRIVER
    browser_findings = [b for b in bodies if b["process.pid"] == browser.pid]
    assert sorted(b["rule"] for b in browser_findings) == sorted(SELENIUM_SESSION_RULES - {WEBDRIVER})
    for body in browser_findings:
        assert body["process.executable"] == "/usr/lib/chromium/chromium"
        assert body["process.parent.executable"] == CHROMEDRIVER
        command_line = body["process.command_line"]
        assert "--enable-automation" in command_line and "--test-type=webdriver" in command_line
        assert "--remote-debugging-port=" in command_line and "scoped_dir" in command_line
    # The renderer, GPU and utility children were seen and judged, and gave nothing: one browser is six
    # findings in all (one per rule above), however many children it starts.
    children = [started for started, _ in chain.detection.verdicts
                if started.process.pid in tree_pids and " --type=" in started.process.command_line]
    assert len({c.process.pid for c in children}) >= 3, "the browser's children were not observed"
    assert not [b for b in bodies if " --type=" in b["process.command_line"]]
    assert len(bodies) == len(SELENIUM_SESSION_RULES), sorted((b["process.pid"], b["rule"]) for b in bodies)


@pytest.mark.parametrize("tool", ["wget", "httrack"])
def test_a_website_mirroring_tool_is_a_scripting_finding(tool: str, chain: Chain, site: WaybillSite,
                                                         tmp_path: Path) -> None:
    argv = {
        "wget": ["wget", "-q", "-r", "-l", "2", "-np", site.url()],
        "httrack": ["httrack", site.url(), "-O", str(tmp_path / "mirror"), "-r2", "-q"],
    }[tool]
    with running(argv, tmp_path) as mirror:
        bodies = wait_until(lambda: chain.findings({mirror.pid}), 30, what=f"a finding about {tool}")
        assert mirror.wait(TOOL_TIMEOUT_S) == 0
    [body] = bodies
    assert body["rule"] == MIRRORING and body["category"] == "scripting" and body["severity"] == "high"
    assert body["process.executable"] == f"/usr/bin/{tool}" and site.url() in body["process.command_line"]
    mirrored = list(tmp_path.rglob(f"{WAYBILLS[-1]}.html"))
    assert mirrored, f"{tool} did not copy the site"


@pytest.mark.parametrize("tool", ["wget", "curl"])
def test_a_plain_download_of_one_page_is_no_finding(tool: str, chain: Chain, site: WaybillSite,
                                                    tmp_path: Path) -> None:
    program = f"/usr/bin/{tool}"
    argv = [program, "-q", "-O", "page.html", site.url()] if tool == "wget" else [
        program, "-sf", "-o", "page.html", site.url()]
    with running(argv, tmp_path) as download:
        def judged_as_itself() -> bool:
            return any(started.process.exe == program for started, _ in chain.judged(download.pid))

        # Judged as the download tool itself, not only as the copy of pytest it was forked from.
        wait_until(judged_as_itself, 20, interval=0.05, what=f"detection to judge {tool}")
        assert download.wait(TOOL_TIMEOUT_S) == 0
    assert [found for _, found in chain.judged(download.pid) if found] == []
    assert chain.findings({download.pid}) == []
    assert WAYBILLS[0] in (tmp_path / "page.html").read_text()


@pytest.fixture(scope="session")
def mitmdump(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mitmdump from PyPI, in a venv of its own: mitmproxy pins cryptography and h11 below ours.

    Kept in pytest's cache so that only the first run pays the ~15 s install; a lock lets
    concurrent sessions share it.
    """
    cache = request.config.cache
    home = cache.mkdir("mitmproxy-venv") if cache is not None else tmp_path_factory.mktemp("mitmproxy-venv")
    venv, done = home / "venv", home / "installed"
    with (home / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=120)
            pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "mitmproxy"],
                                 capture_output=True, text=True, timeout=300)
            if pip.returncode != 0:
                pytest.fail(f"pip install mitmproxy failed (network?):\n{pip.stderr[-2000:]}", pytrace=False)
            done.touch()
    return venv / "bin" / "mitmdump"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_mitmdump_from_pypi_intercepting_the_site_is_an_interception_finding(
        chain: Chain, site: WaybillSite, mitmdump: Path, tmp_path: Path) -> None:
    port = free_port()
    argv = [str(mitmdump), "--listen-host", "127.0.0.1", "--listen-port", str(port),
            "--set", f"confdir={tmp_path / 'mitmproxy'}"]
    with running(argv, tmp_path) as proxy:
        def listening() -> bool:
            assert proxy.poll() is None, f"mitmdump exited with {proxy.returncode}"
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening, 30, what="mitmdump to listen")
        through = urllib.request.build_opener(urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{port}"}))
        with through.open(site.url(f"/waybills/{WAYBILLS[0]}.html"), timeout=TOOL_TIMEOUT_S) as page:
            assert WAYBILLS[0] in page.read().decode()
        bodies = wait_until(lambda: chain.findings({proxy.pid}), 30, what="a finding about mitmdump")
    [body] = bodies
    assert body["rule"] == MITMPROXY and body["category"] == "interception"
    assert f"{mitmdump} --listen-host 127.0.0.1 --listen-port {port}" in body["process.command_line"]
