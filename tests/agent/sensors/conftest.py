"""Real processes for the sensor tests: a tiny compiled program copied under the names of real tools.

The program ignores its arguments (so ``chromedriver --port=9515`` runs as written), optionally
connects to ``TG_CONNECT=host:port`` and says "connected", then sleeps until killed. Copies of it
have their own executable path, name and hash, like the real tools would.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SLEEPER_C = r"""
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
    const char *target = getenv("TG_CONNECT");
    if (target) {
        char host[64];
        const char *colon = strrchr(target, ':');
        if (!colon || colon - target >= (long)sizeof host) return 2;
        memcpy(host, target, colon - target);
        host[colon - target] = 0;
        struct sockaddr_in addr = {0};
        addr.sin_family = AF_INET;
        addr.sin_port = htons((unsigned short)atoi(colon + 1));
        if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) return 2;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) return 3;
        puts("connected");
        fflush(stdout);
    }
    for (;;) pause();
}
"""

SCRIPT_PY = """
import os, socket, sys, time
target = os.environ.get("TG_CONNECT")
if target:
    host, port = target.rsplit(":", 1)
    conn = socket.create_connection((host, int(port)))
    print("connected", flush=True)
time.sleep(120)
"""


def build_sleeper(work: Path, name: str = "sleeper") -> Path:
    """Compile the sleeper into ``work/name``: the stand-in that real tools' names are copied onto."""
    source = work / "sleeper.c"
    source.write_text(SLEEPER_C)
    binary = work / name
    compiler = shutil.which("cc") or shutil.which("gcc")
    assert compiler, "these tests need a C compiler (gcc) to build stand-ins for real tools"
    subprocess.run([compiler, "-O1", "-o", str(binary), str(source)], check=True)
    return binary


@pytest.fixture(scope="session")
def sleeper_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sleeper(tmp_path_factory.mktemp("sleeper"))


@pytest.fixture
def install_tool(sleeper_binary: Path, tmp_path: Path) -> Callable[[str], Path]:
    """Copy the sleeper to ``tmp_path/relative`` (e.g. "opt/ToDesk/ToDesk") and return its path."""

    def install(relative: str) -> Path:
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(sleeper_binary, target)
        return target

    return install


@pytest.fixture
def python_script(tmp_path: Path) -> Callable[[str], Path]:
    """Write the connecting/sleeping Python script under a tool's script name (scrape.py ...)."""

    def write(name: str) -> Path:
        path = tmp_path / name
        path.write_text(SCRIPT_PY)
        return path

    return write


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start a real process; every process started is killed and reaped at the end of the test."""
    started: list[subprocess.Popen[str]] = []

    def start(argv: list[str], *, connect: str | None = None, cwd: Path | None = None) -> subprocess.Popen[str]:
        env = {"PATH": "/usr/bin:/bin"} | ({"TG_CONNECT": connect} if connect else {})
        # A session of its own, so that cleanup also kills whatever the process started.
        proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        started.append(proc)
        if connect:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line == "connected", f"{argv[0]} did not connect to {connect} (exit {proc.poll()})"
        return proc

    yield start
    for proc in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
def python_exe() -> str:
    return sys.executable


# --- a minimal PE32 file with a version resource, built byte by byte -------------------------


def _pad4(data: bytes) -> bytes:
    return data + b"\x00" * (-len(data) % 4)


def _version_node(key: str, value: bytes = b"", *, value_length: int = 0, text: bool = False,
                  children: tuple[bytes, ...] = ()) -> bytes:
    """One node of VS_VERSIONINFO: wLength, wValueLength, wType, key, pad, value, pad, children."""
    header = b"\x00" * 6
    body = _pad4(header + (key + "\x00").encode("utf-16-le"))[6:] + value
    for child in children:
        body = _pad4(header + body)[6:] + child
    return struct.pack("<HHH", 6 + len(body), value_length, 1 if text else 0) + body


def version_resource(strings: dict[str, str]) -> bytes:
    entries = tuple(
        _version_node(name, (value + "\x00").encode("utf-16-le"), value_length=len(value) + 1, text=True)
        for name, value in strings.items()
    )
    table = _version_node("040904B0", text=True, children=entries)
    string_info = _version_node("StringFileInfo", text=True, children=(table,))
    translation = _version_node("Translation", struct.pack("<HH", 0x0409, 0x04B0), value_length=4)
    var_info = _version_node("VarFileInfo", text=True, children=(translation,))
    fixed = struct.pack("<13I", 0xFEEF04BD, 0x00010000, 0x00010002, 0x00030004, 0x00010002, 0x00030004,
                        0x3F, 0, 0x40004, 1, 0, 0, 0)
    return _version_node("VS_VERSION_INFO", fixed, value_length=len(fixed), children=(string_info, var_info))


def _resource_directory(entry_id: int, offset: int, *, subdirectory: bool) -> bytes:
    flag = 0x80000000 if subdirectory else 0
    return struct.pack("<IIHHHH", 0, 0, 0, 0, 0, 1) + struct.pack("<II", entry_id, offset | flag)


def build_pe(strings: dict[str, str] | None) -> bytes:
    """A PE32 image with one .rsrc section holding RT_VERSION (or no resources when None)."""
    rva, file_align, section_align = 0x1000, 0x200, 0x1000
    rsrc = b"\x00" * 16
    if strings is not None:
        version = version_resource(strings)
        rsrc = (
            _resource_directory(16, 24, subdirectory=True)  # type RT_VERSION
            + _resource_directory(1, 48, subdirectory=True)  # name 1
            + _resource_directory(0x0409, 72, subdirectory=False)  # language en-US
            + struct.pack("<IIII", rva + 88, len(version), 0, 0)  # data entry
            + version
        )
    raw_size = len(rsrc) + (-len(rsrc) % file_align)
    image_size = rva + len(rsrc) + (-len(rsrc) % section_align)
    dos = b"MZ" + b"\x00" * 58 + struct.pack("<I", 0x40)
    coff = b"PE\x00\x00" + struct.pack("<HHIIIHH", 0x14C, 1, 0, 0, 0, 224, 0x0102)
    directories = [(0, 0)] * 16
    if strings is not None:
        directories[2] = (rva, len(rsrc))
    optional = struct.pack(
        "<HBBIIIIIIIIIHHHHHHIIIIHHIIIIII",
        0x10B, 14, 0, 0, raw_size, 0, rva, rva, rva,
        0x400000, section_align, file_align,
        6, 0, 0, 0, 6, 0,
        0, image_size, file_align, 0,
        2, 0,
        0x100000, 0x1000, 0x100000, 0x1000,
        0, 16,
    ) + b"".join(struct.pack("<II", a, s) for a, s in directories)
    section = struct.pack("<8sIIIIIIHHI", b".rsrc", len(rsrc), rva, raw_size, file_align, 0, 0, 0, 0, 0x40000040)
    headers = dos + coff + optional + section
    return headers + b"\x00" * (file_align - len(headers)) + rsrc + b"\x00" * (raw_size - len(rsrc))


@pytest.fixture
def pe_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a generated PE file: ``pe_file("AutoHotkey.exe", {"CompanyName": ...})``."""

    def write(name: str, strings: dict[str, str] | None) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(build_pe(strings))
        return path

    return write
