"""Fixtures for the installer tests: the .deb built once per session, a clean system around each
install test, and a real HQ on loopback."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hq_server import HqServer
from tests.installer import debian_system as system

BUILD_DEB = system.ROOT / "installer" / "linux" / "build_deb.sh"
BUILD_BUDGET_S = 180.0


@pytest.fixture(scope="session")
def deb_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the .deb once per session with the same script as `make package`."""
    out = tmp_path_factory.mktemp("deb")
    started = time.monotonic()
    build = subprocess.run([str(BUILD_DEB), "--out", str(out)], capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - started
    if build.returncode != 0:
        pytest.fail(f"build_deb.sh failed (exit {build.returncode}):\n{build.stdout}\n{build.stderr[-4000:]}",
                    pytrace=False)
    debs = sorted(out.glob("terminal-guard_*.deb"))
    assert len(debs) == 1, f"expected one .deb in {out}, found {debs}"
    print(f"\nbuild_deb.sh: {debs[0].name}, {debs[0].stat().st_size / 1e6:.1f} MB in {elapsed:.0f} s")
    return debs[0]


@pytest.fixture
def clean_system() -> Iterator[None]:
    """Root, no terminal-guard before the test, and none after it, whatever the test did."""
    if os.geteuid() != 0:
        pytest.fail("the .deb tests install a package system-wide with dpkg and must run as root", pytrace=False)
    system.purge()
    system.clear_debconf()
    assert not system.leftovers(), f"files of an earlier terminal-guard remain: {system.leftovers()}"
    try:
        yield
    finally:
        purged = system.purge()
        system.clear_debconf()
        if purged is not None:
            assert purged.returncode == 0, f"dpkg --purge failed:\n{purged.stdout}\n{purged.stderr}"


@pytest.fixture
def hq() -> Iterator[HqServer]:
    with HqServer() as server:
        yield server

