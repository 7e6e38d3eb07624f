"""Host lists from policy (names, IPs, CIDRs) and a bounded, cached resolver that maps them to IPs.

A connection table only has addresses, so a policy that names ``waybill.example.com`` is
resolved to its IP set periodically; IPs and CIDRs are used as they are. A failed lookup keeps
the last good answer (a DNS hiccup must not blind the sensor) and is retried after a shorter
delay than a successful one.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class HostList:
    """A parsed host list: host names to resolve and networks (single IPs are /32 or /128)."""

    names: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()


def _is_host_name(text: str) -> bool:
    name = text[:-1] if text.endswith(".") else text
    return 0 < len(name) <= 253 and all(_LABEL.match(label) for label in name.split("."))


def parse_host_entry(entry: str, where: str) -> str | IPNetwork:
    text = entry.strip()
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        pass
    if _is_host_name(text) and not text.replace(".", "").isdigit():
        return text.rstrip(".").lower()
    raise ValueError(
        f"{where}: {entry!r} is not an IP address, a CIDR (10.1.0.0/16) or a host name"
        " (waybill.example.com; no scheme, port or path)"
    )


def parse_host_list(entries: Iterable[str], where: str = "hosts") -> HostList:
    """Parse policy host entries; a bad one raises ValueError naming ``where[index]``."""
    names: list[str] = []
    networks: list[IPNetwork] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, str):
            raise ValueError(f"{where}[{index}]: expected a string, got {type(entry).__name__}")
        parsed = parse_host_entry(entry, f"{where}[{index}]")
        if isinstance(parsed, str):
            if parsed not in names:
                names.append(parsed)
        else:
            networks.append(parsed)
    return HostList(names=tuple(names), networks=tuple(networks))


def normalize_ip(text: str) -> str | None:
    """Canonical text of an address; IPv4-mapped IPv6 (dual-stack sockets) becomes plain IPv4."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def system_lookup(name: str) -> list[str]:
    infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


@dataclass
class _Entry:
    addresses: frozenset[str]
    expires: float


class HostResolver:
    """Name -> IP set, cached for ``ttl_s`` (``failure_ttl_s`` after a failure), at most ``max_names``."""

    def __init__(
        self,
        *,
        lookup: Callable[[str], Iterable[str]] = system_lookup,
        ttl_s: float = 300.0,
        failure_ttl_s: float = 30.0,
        max_names: int = 512,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._ttl = ttl_s
        self._failure_ttl = failure_ttl_s
        self._max = max_names
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.lookups = 0
        self.failures = 0

    def addresses(self, name: str) -> frozenset[str]:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None:
                self._entries.move_to_end(name)
                if entry.expires > now:
                    return entry.addresses
        fresh = self._resolve(name)
        with self._lock:
            if fresh is None:
                kept = entry.addresses if entry is not None else frozenset()
                self._store(name, _Entry(kept, now + self._failure_ttl))
                return kept
            self._store(name, _Entry(fresh, now + self._ttl))
            return fresh

    def _resolve(self, name: str) -> frozenset[str] | None:
        self.lookups += 1
        try:
            found = {ip for raw in self._lookup(name) if (ip := normalize_ip(raw)) is not None}
        except (OSError, UnicodeError) as exc:
            self.failures += 1
            log.warning("cannot resolve %s (keeping the last good addresses): %s", name, exc)
            return None
        return frozenset(found)

    def _store(self, name: str, entry: _Entry) -> None:
        self._entries[name] = entry
        self._entries.move_to_end(name)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


class HostMatcher:
    """Answers "is this remote IP one of the listed hosts, and which name?" from a HostList."""

    def __init__(self, hosts: HostList, resolver: HostResolver) -> None:
        self._hosts = hosts
        self._resolver = resolver
        self._by_ip: dict[str, str] = {}

    def refresh(self) -> bool:
        """Re-read names from the resolver (which looks up only those whose cache expired).

        True when the name -> IP map changed, so callers can drop what they derived from it.
        """
        if not self._hosts.names:
            return False
        by_ip: dict[str, str] = {}
        for name in self._hosts.names:
            for ip in self._resolver.addresses(name):
                by_ip.setdefault(ip, name)
        changed = by_ip != self._by_ip
        self._by_ip = by_ip
        return changed

    def match(self, ip: str) -> tuple[bool, str | None]:
        """(matched, host name when the IP belongs to a named host)."""
        name = self._by_ip.get(ip)
        if name is not None:
            return True, name
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False, None
        return any(address in network for network in self._hosts.networks), None
