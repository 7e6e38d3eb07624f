"""What every chaos test shares: a bounded or a soak scale, a real HQ, an enrolled agent process,
a feeder that keeps findings coming, and HQ's stored events read in-process.

The bounded form runs in `make test`; `make soak` sets TG_SOAK=1 and the same tests run longer
with the same assertions (the long form is bigger parameters, never different tests).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from agent.events import PRIORITY_MEDIUM, Event
from agent.spool import Spool, stored_size
from hq import commands
from hq.db import make_engine, make_sessions
from hq.settings import DEFAULT_SILENT_AFTER_S, Settings
from tests.agent_process import AgentProcess, wait_until
from tests.hq_server import HqServer

SOAK = os.environ.get("TG_SOAK", "") not in ("", "0")
TEST_KIND = "chaos.test"
FINDING_LOG = re.compile(r"^finding \S+ \(\w+, \w+\)$")  # agent.detection.respond


def scaled(bounded: float, soak: float) -> float:
    """The bounded value in `make test`, the soak value under TG_SOAK=1."""
    return soak if SOAK else bounded


class HqView:
    """HQ's database read in this process, through HQ's own query functions (no CLI per poll)."""

    def __init__(self, hq: HqServer) -> None:
        self._engine: Engine = make_engine(hq.db_url)
        self._sessions = make_sessions(self._engine)

    def events(self, kind: str = TEST_KIND, device_id: str | None = None) -> list[dict[str, Any]]:
        return commands.events(self._sessions, since=None, kind=kind, device_id=device_id, limit=10_000_000)

    def event_ids(self, kind: str = TEST_KIND) -> list[str]:
        return [e["event_id"] for e in self.events(kind)]

    def device(self, device_id: str) -> dict[str, Any]:
        records = commands.devices(self._sessions, silent_after_s=DEFAULT_SILENT_AFTER_S,
                                   default_interval_s=Settings.heartbeat_interval_s)
        return next((r for r in records if r["device_id"] == device_id), {})

    def close(self) -> None:
        self._engine.dispose()


def token_for(hq: HqServer, outlet: str = "outlet-chaos") -> str:
    done = hq.cli("token", "create", "--outlet", outlet)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def enrolled_agent(hq: HqServer, root: Path, *, url: str | None = None, **options: Any) -> tuple[AgentProcess, str]:
    """An agent enrolled with ``hq`` (through ``url`` when a proxy stands in between)."""
    agent = AgentProcess(root, **options)
    device_id = agent.enroll(url or hq.url, token_for(hq), hq.ca_file)["device_id"]
    return agent, device_id


def chaos_events(count: int, tag: str, *, start: int = 0, priority: int = PRIORITY_MEDIUM) -> list[Event]:
    return [Event(TEST_KIND, {"tag": tag, "n": start + i}, priority=priority) for i in range(count)]


def event_size() -> int:
    """The bytes one test event counts against the spool bound (all test events are the same size)."""
    return stored_size(chaos_events(1, "x", start=100_000)[0])


class Feeder:
    """Puts test events into the agent's spool file from this process at a steady rate, the way a
    second writer (the detection thread) does: findings keep coming whatever HQ or the uplink do.
    """

    def __init__(self, spool_path: Path, *, per_tick: int | Callable[[float], int], tick_s: float, tag: str,
                 max_bytes: int | None = None, max_age_s: float | None = None) -> None:
        self._spool_path = spool_path
        # A number of events per tick, or a function of the seconds since start (a burst, then a trickle).
        self._per_tick = per_tick if callable(per_tick) else (lambda _elapsed: per_tick)
        self._max_age_s = max_age_s
        self._tick_s = tick_s
        self._tag = tag
        self._max_bytes = max_bytes
        self.fed: list[str] = []
        self.created: dict[str, float] = {}
        self.max_seen_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-feeder", daemon=True)
        self.error: BaseException | None = None

    def _spool(self) -> Spool:
        options: dict[str, Any] = {}
        if self._max_bytes is not None:
            options["max_bytes"] = self._max_bytes
        if self._max_age_s is not None:
            options["max_age_s"] = self._max_age_s
        return Spool(self._spool_path, **options)

    def _run(self) -> None:
        try:
            started = time.monotonic()
            with self._spool() as spool:
                while not self._stop.is_set():
                    events = chaos_events(self._per_tick(time.monotonic() - started), self._tag, start=len(self.fed))
                    spool.put_many(events)
                    self.fed.extend(e.id for e in events)
                    self.created.update((e.id, e.created) for e in events)
                    self.max_seen_bytes = max(self.max_seen_bytes, spool.size_bytes())
                    self._stop.wait(self._tick_s)
        except BaseException as exc:  # reported by stop(), so a feeder failure fails the test
            self.error = exc

    def start(self) -> Feeder:
        self._thread.start()
        return self

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(30)
        if self.error is not None:
            raise AssertionError(f"the feeder failed: {self.error!r}") from self.error
        return self.fed


@contextmanager
def running(agent: AgentProcess) -> Iterator[AgentProcess]:
    """Start the agent; whatever happens, leave no process behind."""
    agent.start()
    try:
        yield agent
    finally:
        if agent.alive():
            try:
                agent.stop(timeout=20)
            except Exception:
                agent.kill()


def wait_for_heartbeat(view: HqView, device_id: str, timeout: float = 30, *, after: int = 0) -> dict[str, Any]:
    return dict(wait_until(lambda: (d := view.device(device_id)).get("heartbeat_count", 0) > after and d,
                           timeout, what=f"a heartbeat from {device_id} at HQ"))


def assert_exactly_once(view: HqView, expected: set[str], timeout: float, *, kind: str = TEST_KIND) -> float:
    """Wait until every expected event is at HQ; no duplicate and nothing unexpected. Returns seconds waited."""
    started = time.monotonic()
    wait_until(lambda: len(set(view.event_ids(kind)) & expected) >= len(expected), timeout, interval=0.5,
               what=f"{len(expected)} events at HQ")
    waited = time.monotonic() - started
    ids = view.event_ids(kind)
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} event(s) stored twice"
    assert set(ids) == expected, f"{len(set(ids) - expected)} unexpected event(s) at HQ"
    return waited


def measure(what: Callable[[], Any], timeout: float, name: str) -> float:
    """Seconds until ``what()`` is true."""
    started = time.monotonic()
    wait_until(what, timeout, interval=0.2, what=name)
    return time.monotonic() - started


@dataclass
class Record:
    """One row of the measured numbers that docs/faults.md reports; printed with -s and kept in a file."""

    fault: str
    numbers: dict[str, Any]

    def emit(self) -> None:
        line = f"[chaos] {self.fault}: " + ", ".join(f"{k}={v}" for k, v in self.numbers.items())
        print(line)
        out = os.environ.get("TG_CHAOS_REPORT")
        if out:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            with open(out, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")


def configure(agent: AgentProcess, section: str, **values: float | int | str) -> None:
    """Add keys to a section of the agent's config file (the section must already be there)."""
    text = agent.config.read_text("utf-8")
    header = f"[{section}]\n"
    assert header in text, f"{agent.config} has no {header.strip()} section"
    lines = "".join(f"{key} = {value!r}\n" if not isinstance(value, str) else f'{key} = "{value}"\n'
                    for key, value in values.items())
    agent.config.write_text(text.replace(header, header + lines, 1), "utf-8")


def findings_spooled(agent: AgentProcess) -> int:
    """How many findings the agent's own detection spooled (its log line per finding), so a test that
    counts losses can tell real detections on this machine from the events it fed itself."""
    return sum(1 for line in agent.log_lines() if FINDING_LOG.match(line.get("msg", "")))
