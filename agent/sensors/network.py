"""Network sensor: which process talks to the protected hosts and to remote-control/tunnel services.

Each tick reads the connection table once, keeps the sockets whose remote address belongs to a
policy host list, finds the owning process of those only (on Linux that is the costly part, see
connections.py), and reports each (pid, remote address, remote port) pair once while that
process lives, so a client that reconnects every request does not flood the spool. A pair
already reported costs no process read on later ticks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Container, Iterable

import psutil

from agent.sensors.connections import Socket, SocketTable, default_socket_table, listening_ports
from agent.sensors.hosts import HostMatcher, HostResolver, parse_host_list
from agent.sensors.observations import NetworkConnection, ProcessInfo
from agent.sensors.procinfo import read_info
from agent.sensors.worker import PollingWorker

log = logging.getLogger(__name__)

PROTECTED = "protected"
WATCHED = "watched"
# Sockets in these states have no owner any more (TIME_WAIT) or no peer (LISTEN).
_IGNORED_STATUS = {psutil.CONN_LISTEN, psutil.CONN_TIME_WAIT, psutil.CONN_CLOSE}

PairKey = tuple[int | None, str, int | None]
MAX_CLASSIFIED = 4096  # remote IPs whose host-list verdict is remembered until the lists change


class NetworkSensor:
    def __init__(
        self,
        out: Callable[[NetworkConnection], None],
        *,
        protected_hosts: Iterable[str],
        watched_hosts: Iterable[str] = (),
        resolver: HostResolver | None = None,
        interval_s: float = 2.0,
        max_pairs: int = 10_000,
        lister: SocketTable | None = None,
    ) -> None:
        self._out = out
        self._resolver = resolver or HostResolver()
        self._lister = lister or default_socket_table()
        self._max_pairs = max_pairs
        self._seen: OrderedDict[PairKey, None] = OrderedDict()
        self._lock = threading.Lock()
        self._matchers: list[tuple[str, HostMatcher]] = []
        self._classified: dict[str, tuple[str | None, str | None]] = {}
        self.set_hosts(protected_hosts, watched_hosts)
        self._worker = PollingWorker("tg-sensor-network", interval_s, self.poll)

    @property
    def name(self) -> str:
        return self._worker.name

    def set_hosts(self, protected_hosts: Iterable[str], watched_hosts: Iterable[str] = ()) -> None:
        """Replace the host lists (a new policy); raises ValueError naming the bad entry."""
        matchers = [
            (PROTECTED, HostMatcher(parse_host_list(protected_hosts, "protected_hosts"), self._resolver)),
            (WATCHED, HostMatcher(parse_host_list(watched_hosts, "watched_hosts"), self._resolver)),
        ]
        with self._lock:
            self._matchers = matchers
            self._classified.clear()

    def poll(self, now: float | None = None) -> list[NetworkConnection]:
        """One tick: report connections to listed hosts that were not reported before."""
        observed = time.time() if now is None else now
        with self._lock:
            matched = self._matching(observed, known=self._seen)
            fresh = []
            for key, conn in matched:
                if conn is not None and key not in self._seen:  # two sockets of one pair: one report
                    fresh.append(conn)
                self._seen[key] = None
                self._seen.move_to_end(key)
            self._forget_dead_pairs()
        for conn in fresh:
            try:
                self._out(conn)
            except Exception:
                log.exception("network sensor consumer failed")
        return fresh

    def current(self, now: float | None = None) -> list[NetworkConnection]:
        """Every present connection to a listed host (for a one-shot scan); nothing is emitted."""
        observed = time.time() if now is None else now
        with self._lock:
            return [conn for _, conn in self._matching(observed) if conn is not None]

    def start(self) -> None:
        self._worker.start()

    def stop(self, timeout: float = 2.0) -> bool:
        return self._worker.stop(timeout)

    def is_alive(self) -> bool:
        return self._worker.is_alive()

    def _matching(self, observed: float, known: Container[PairKey] = ()
                  ) -> list[tuple[PairKey, NetworkConnection | None]]:
        """Connections to listed hosts; for pairs in ``known`` the process is not read (None)."""
        self._refresh_hosts()
        sockets = self._lister.list()
        listening = listening_ports(sockets)
        candidates = [s for s in sockets if s.remote_ip is not None and s.status not in _IGNORED_STATUS
                      and self._classify(s.remote_ip)[0] is not None]
        infos: dict[int, ProcessInfo | None] = {}
        found: list[tuple[PairKey, NetworkConnection | None]] = []
        for sock in self._lister.with_owners(candidates):
            ip = sock.remote_ip or ""
            key = (sock.pid, ip, sock.remote_port)
            group, hostname = self._classify(ip)
            if key in known or group is None:
                found.append((key, None))
                continue
            if sock.pid is not None and sock.pid not in infos:
                infos[sock.pid] = read_info(sock.pid)
            process = infos.get(sock.pid) if sock.pid is not None else None
            found.append((key, _connection(sock, process, listening, observed, hostname, group)))
        return found

    def _refresh_hosts(self) -> None:
        # Names are re-resolved as their cache expires; a changed answer voids the verdicts.
        changed = [matcher.refresh() for _, matcher in self._matchers]
        if any(changed):
            self._classified.clear()

    def _classify(self, ip: str) -> tuple[str | None, str | None]:
        verdict = self._classified.get(ip)
        if verdict is None:
            verdict = (None, None)
            for group, matcher in self._matchers:
                hit, hostname = matcher.match(ip)
                if hit:
                    verdict = (group, hostname)
                    break
            if len(self._classified) >= MAX_CLASSIFIED:
                self._classified.clear()
            self._classified[ip] = verdict
        return verdict

    def _forget_dead_pairs(self) -> None:
        # A pair is remembered while its process lives; a pid reused later by another
        # process talking to the same host is then reported again, as it should be.
        if self._seen:
            alive = set(psutil.pids())
            for key in [key for key in self._seen if key[0] is not None and key[0] not in alive]:
                del self._seen[key]
        while len(self._seen) > self._max_pairs:
            self._seen.popitem(last=False)


def _connection(
    sock: Socket,
    process: ProcessInfo | None,
    listening: set[int],
    observed: float,
    hostname: str | None,
    group: str,
) -> NetworkConnection:
    inbound = sock.protocol == "tcp" and sock.local_port in listening
    return NetworkConnection(
        process=process,
        local_ip=sock.local_ip,
        local_port=sock.local_port,
        remote_ip=sock.remote_ip or "",
        remote_port=sock.remote_port or 0,
        direction="inbound" if inbound else "outbound",
        status=sock.status,
        observed_at=observed,
        remote_hostname=hostname,
        protocol=sock.protocol,
        remote_group=group,
    )


def _normalize_program(text: str) -> str:
    return text.strip().replace("\\", "/").lower()


def _bare(name: str) -> str:
    return name[:-4] if name.endswith(".exe") else name


def is_approved(process: ProcessInfo | None, approved_programs: Iterable[str]) -> bool:
    """True when the process matches an approved entry.

    An entry with a path separator (either kind) must equal the executable's full path; a bare
    entry matches the executable's file name, with or without ``.exe``. Both are compared
    case-insensitively, on Windows and Linux alike. The process name is used only when the
    executable is unknown (access denied): it is the weakest evidence, set by the process itself.
    A connection whose process is unknown is never approved.
    """
    if process is None:
        return False
    exe = _normalize_program(process.exe or "")
    base = _bare(exe.rsplit("/", 1)[-1] if exe else _normalize_program(process.name))
    for raw in approved_programs:
        entry = _normalize_program(raw)
        if not entry:
            continue
        if "/" in entry:
            if exe and exe == entry:
                return True
        elif base and _bare(entry) == base:
            return True
    return False


def unapproved_clients(
    conns: Iterable[NetworkConnection], approved_programs: Iterable[str]
) -> list[NetworkConnection]:
    """Outbound connections to a protected host by a program not on the approved list.

    This is the `scripting` signal: a Python script or macro tool exporting waybills shows up
    here whatever innocent name it has. Inbound sockets are the other end and are not clients.
    """
    approved = tuple(approved_programs)
    return [
        conn
        for conn in conns
        if conn.remote_group == PROTECTED
        and conn.direction == "outbound"
        and not is_approved(conn.process, approved)
    ]
