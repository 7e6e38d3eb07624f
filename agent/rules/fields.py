"""Sigma field names for our observations: the only place that knows both vocabularies.

Rules are written against the Sysmon-style fields of the Sigma taxonomy; sensors produce
`ProcessStarted` and `NetworkConnection` records. A `Record` is the flattened view one event
offers to every rule: each Sigma field maps to a tuple of string values (empty tuple = the field
is absent, which is what `Field: null` matches).

process_creation (from `ProcessStarted`)
    ===================  ==============================================================
    Image                process.exe, else process.name (path variants, see below)
    OriginalFileName     process.original_file_name (PE version info; Windows only)
    CommandLine          process.command_line (argv joined by spaces; absent when empty)
    ParentImage          parent.exe, else parent.name (path variants)
    ParentCommandLine    parent.command_line
    ParentProcessName    parent.name
    User                 process.user
    Product              process.product
    Company              process.company
    Description          process.description
    Hashes               "SHA256=<UPPER-HEX>" from process.exe_sha256 (Sysmon's format)
    ProcessId            process.pid
    ParentProcessId      process.ppid, else parent.pid
    CurrentDirectory     process.cwd when the sensor provides one (absent otherwise)
    ===================  ==============================================================

network_connection (from `NetworkConnection`)
    Sigma follows Sysmon: *Source* is the side that opened the connection. For an outbound
    connection that is this PC (Source = local, Destination = remote); for an inbound one the
    remote peer is the source and this PC the destination.

    ===================  ==============================================================
    Image                process.exe, else process.name (path variants)
    CommandLine          process.command_line
    User                 process.user
    ProcessId            process.pid
    Initiated            "true" for outbound, "false" for inbound
    DestinationIp        remote_ip (outbound) / local_ip (inbound)
    DestinationPort      remote_port (outbound) / local_port (inbound)
    DestinationHostname  remote_hostname (outbound only)
    DestinationIsIpv6    "true" / "false"
    SourceIp             local_ip (outbound) / remote_ip (inbound)
    SourcePort           local_port (outbound) / remote_port (inbound)
    SourceHostname       remote_hostname (inbound only)
    SourceIsIpv6         "true" / "false"
    Protocol             protocol, lower case ("tcp", "udp")
    ===================  ==============================================================

Windows and Linux paths
    SigmaHQ rules say `Image|endswith: '\\chromedriver.exe'`. So that the same rule catches
    `/usr/bin/chromedriver`, a POSIX path is offered in three spellings: as observed
    (`/usr/bin/chromedriver`), with backslashes (`\\usr\\bin\\chromedriver`) and with `.exe`
    appended when the name has no `.exe` (`\\usr\\bin\\chromedriver.exe`). A bare name with no
    directory (the sensor could not read the executable path) gets a leading backslash
    (`chromedriver` -> `\\chromedriver`, `\\chromedriver.exe`), so `endswith '\\name.exe'`
    still works while `todesk.exe` can never match `hoptodesk.exe`. A field matches when any
    of its spellings matches, so Linux rules written with `/usr/bin/...` match the first one.
    Windows paths are offered as observed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from agent.sensors.observations import NetworkConnection, ProcessInfo, ProcessStarted
from agent.utf8 import utf8_safe

PROCESS_CREATION = "process_creation"
NETWORK_CONNECTION = "network_connection"

PROCESS_FIELDS = frozenset(
    {
        "Image", "OriginalFileName", "CommandLine", "ParentImage", "ParentCommandLine",
        "ParentProcessName", "User", "Product", "Company", "Description", "Hashes",
        "ProcessId", "ParentProcessId", "CurrentDirectory",
    }
)
NETWORK_FIELDS = frozenset(
    {
        "Image", "CommandLine", "User", "ProcessId", "Initiated", "DestinationIp",
        "DestinationPort", "DestinationHostname", "DestinationIsIpv6", "SourceIp", "SourcePort",
        "SourceHostname", "SourceIsIpv6", "Protocol",
    }
)
FIELDS_BY_CATEGORY = {PROCESS_CREATION: PROCESS_FIELDS, NETWORK_CONNECTION: NETWORK_FIELDS}

Values = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Record:
    """One event as rules see it. `folded` holds the casefolded values (Sigma matching is
    case-insensitive); `haystack` is every folded value joined, for the literal prefilter."""

    raw: dict[str, Values]
    folded: dict[str, Values]
    all_raw: Values
    all_folded: Values
    haystack: str


def make_record(fields: dict[str, Values]) -> Record:
    raw = {name: tuple(utf8_safe(v) for v in values) for name, values in fields.items() if values}
    folded = {name: tuple(v.casefold() for v in values) for name, values in raw.items()}
    all_raw = tuple(v for values in raw.values() for v in values)
    all_folded = tuple(v for values in folded.values() for v in values)
    # NUL never occurs in a command line or path, so no literal can match across two values.
    return Record(raw, folded, all_raw, all_folded, "\x00".join(all_folded))


def path_variants(path: str | None) -> Values:
    """The spellings of one executable path that Windows-style rules can match (see above)."""
    if not path:
        return ()
    if "\\" in path and "/" not in path:
        return (path,)
    if "/" in path:
        windows = path.replace("/", "\\")
        variants = [path, windows]
    else:
        windows = "\\" + path
        variants = [path, windows]
    if not windows.casefold().endswith(".exe"):
        variants.append(windows + ".exe")
    return tuple(variants)


def _one(value: object) -> Values:
    if value is None:
        return ()
    text = str(value)
    return (text,) if text else ()


def _image(info: ProcessInfo | None) -> Values:
    if info is None:
        return ()
    return path_variants(info.exe or info.name)


def _command_line(info: ProcessInfo | None) -> Values:
    return _one(info.command_line) if info is not None else ()


def _hashes(info: ProcessInfo) -> Values:
    return (f"SHA256={info.exe_sha256.upper()}",) if info.exe_sha256 else ()


def process_fields(event: ProcessStarted) -> dict[str, Values]:
    proc, parent = event.process, event.parent
    ppid = proc.ppid if proc.ppid is not None else (parent.pid if parent else None)
    return {
        "Image": _image(proc),
        "OriginalFileName": _one(proc.original_file_name),
        "CommandLine": _command_line(proc),
        "ParentImage": _image(parent),
        "ParentCommandLine": _command_line(parent),
        "ParentProcessName": _one(parent.name) if parent else (),
        "User": _one(proc.user),
        "Product": _one(proc.product),
        "Company": _one(proc.company),
        "Description": _one(proc.description),
        "Hashes": _hashes(proc),
        "ProcessId": _one(proc.pid),
        "ParentProcessId": _one(ppid),
        # ProcessInfo has no working directory yet; a sensor that adds `cwd` is picked up here.
        "CurrentDirectory": _one(getattr(proc, "cwd", None)),
    }


def _is_ipv6(address: str) -> str:
    try:
        return "true" if ipaddress.ip_address(address).version == 6 else "false"
    except ValueError:
        return "false"


def network_fields(event: NetworkConnection) -> dict[str, Values]:
    outbound = event.direction == "outbound"
    local = (event.local_ip, event.local_port)
    remote = (event.remote_ip, event.remote_port)
    (src_ip, src_port), (dst_ip, dst_port) = (local, remote) if outbound else (remote, local)
    proc = event.process
    return {
        "Image": _image(proc),
        "CommandLine": _command_line(proc),
        "User": _one(proc.user) if proc else (),
        "ProcessId": _one(proc.pid) if proc else (),
        "Initiated": ("true",) if outbound else ("false",),
        "DestinationIp": _one(dst_ip),
        "DestinationPort": _one(dst_port),
        "DestinationHostname": _one(event.remote_hostname) if outbound else (),
        "DestinationIsIpv6": (_is_ipv6(dst_ip),),
        "SourceIp": _one(src_ip),
        "SourcePort": _one(src_port),
        "SourceHostname": () if outbound else _one(event.remote_hostname),
        "SourceIsIpv6": (_is_ipv6(src_ip),),
        "Protocol": _one(event.protocol.lower() if event.protocol else None),
    }


def known_fields(category: str) -> Iterable[str]:
    return sorted(FIELDS_BY_CATEGORY.get(category, ()))
