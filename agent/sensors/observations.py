"""What sensors see: plain frozen records with no severity and no opinion (STYLE.md #1)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    name: str
    ppid: int | None = None
    exe: str | None = None
    cmdline: tuple[str, ...] = ()
    user: str | None = None
    create_time: float | None = None
    exe_sha256: str | None = None
    # Windows PE version info; None where the OS or the file does not give it.
    original_file_name: str | None = None
    company: str | None = None
    product: str | None = None
    description: str | None = None

    @property
    def command_line(self) -> str:
        return " ".join(self.cmdline)


@dataclass(frozen=True)
class ProcessStarted:
    process: ProcessInfo
    parent: ProcessInfo | None
    observed_at: float


@dataclass(frozen=True)
class NetworkConnection:
    process: ProcessInfo | None
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    direction: str  # "outbound" | "inbound"
    status: str
    observed_at: float
    remote_hostname: str | None = None
    protocol: str = "tcp"
    # Which policy host list the remote address belongs to: "protected" (the waybill system)
    # or "watched" (remote-control and tunnel services); None when it is in neither.
    remote_group: str | None = None


@dataclass(frozen=True)
class RemoteSession:
    user: str | None
    kind: str  # "rdp" | "vnc" | "ssh" | "tty" | "remote_tool"
    source_ip: str | None
    observed_at: float
    host: str | None = None


@dataclass(frozen=True)
class FileWritten:
    path: str
    size: int
    removable: bool
    observed_at: float
    process: ProcessInfo | None = None
