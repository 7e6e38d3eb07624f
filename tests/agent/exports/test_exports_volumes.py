"""Removable drives on Linux (a real sysfs-shaped tree), on Windows (fakes of the two kernel32
calls, which this Linux machine cannot have) and the default watch folders."""

from __future__ import annotations

import json
import os
import subprocess
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.exports.volumes import (
    DRIVE_REMOVABLE,
    FakeVolumes,
    LinuxVolumes,
    MountWatch,
    WindowsVolumes,
    default_watch_folders,
    on_removable,
    removable_checker,
)

Partition = namedtuple("Partition", "device mountpoint fstype opts")


def make_sysfs(root: Path) -> Path:
    """/sys/class/block/<dev> links into /sys/devices, as the kernel lays them out."""
    devices = root / "devices"
    layouts = {
        "sda": ("pci0000:00/ata1/host0/block/sda", "0"),
        "sdb": ("pci0000:00/usb2/2-1/host6/block/sdb", "0"),   # USB hard disk: removable=0, on USB
        "mmcblk0": ("platform/mmc0/block/mmcblk0", "1"),       # SD card
    }
    block = root / "class" / "block"
    block.mkdir(parents=True)
    for disk, (where, removable) in layouts.items():
        disk_dir = devices / where
        disk_dir.mkdir(parents=True)
        (disk_dir / "removable").write_text(removable + "\n")
        (block / disk).symlink_to(disk_dir)
        partition = disk_dir / (disk + ("p1" if disk.startswith("mmc") else "1"))
        partition.mkdir()
        (partition / "partition").write_text("1\n")
        (block / partition.name).symlink_to(partition)
    return root


def test_linux_removable_mounts_from_sysfs(tmp_path: Path) -> None:
    sysfs = make_sysfs(tmp_path / "sys")
    parts = [Partition("/dev/sda1", "/", "ext4", "rw"), Partition("/dev/sdb1", "/media/u/USBDISK", "exfat", "rw"),
             Partition("/dev/mmcblk0p1", "/media/u/SD", "vfat", "rw"),
             Partition("/dev/mapper/cryptroot", "/home", "ext4", "rw"), Partition("tmpfs", "/run", "tmpfs", "rw")]
    volumes = LinuxVolumes(partitions=lambda all=False: parts, sys_root=sysfs)
    assert volumes.removable_mounts() == [Path("/media/u/USBDISK"), Path("/media/u/SD")]


def test_linux_volumes_on_this_machine_do_not_fail() -> None:
    assert isinstance(LinuxVolumes().removable_mounts(), list)


def test_linux_volumes_are_listed_again_only_after_the_mount_table_changed(tmp_path: Path) -> None:
    sysfs = make_sysfs(tmp_path / "sys")
    parts = [Partition("/dev/sda1", "/", "ext4", "rw")]
    changes = [False]
    volumes = LinuxVolumes(partitions=lambda all=False: list(parts), sys_root=sysfs,
                           mounts_changed=lambda: changes.pop(0) if changes else False)
    assert volumes.removable_mounts() == []
    parts.append(Partition("/dev/mmcblk0p1", "/media/u/SD", "vfat", "rw"))
    assert volumes.removable_mounts() == []  # no change signalled: the last answer stands
    assert volumes.listings == 1
    changes.append(True)
    assert volumes.removable_mounts() == [Path("/media/u/SD")]
    assert volumes.listings == 2


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real mount point (and its unmount), as plugging a stick in does to the mount table."""
    if os.geteuid() != 0:
        pytest.fail("mounting a tmpfs needs root; make test runs as root in CI", pytrace=False)
    where = tmp_path / "stick"
    where.mkdir()
    yield where
    subprocess.run(["umount", str(where)], capture_output=True, timeout=30)


def test_mount_watch_sees_a_real_mount_and_unmount(tmpfs: Path) -> None:
    watch = MountWatch()
    assert watch.watching
    assert watch.changed()  # the first answer is always "changed"
    assert not watch.changed()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tg-test", str(tmpfs)], check=True, timeout=30)
    assert watch.changed()
    assert not watch.changed()
    subprocess.run(["umount", str(tmpfs)], check=True, timeout=30)
    assert watch.changed()
    watch.close()


def test_mount_watch_without_the_file_always_says_changed(tmp_path: Path) -> None:
    watch = MountWatch(str(tmp_path / "no-mountinfo"))
    assert not watch.watching
    assert watch.changed() and watch.changed()


class FakeKernel32:
    """GetLogicalDrives / GetDriveTypeW as Windows answers them: a bitmask and a type per root."""

    def __init__(self, types: dict[str, int]) -> None:
        self.types = types
        self.asked: list[str] = []

    def GetLogicalDrives(self) -> int:
        return sum(1 << (ord(letter) - ord("A")) for letter in self.types)

    def GetDriveTypeW(self, root: str) -> int:
        self.asked.append(root)
        return self.types[root[0]]


def test_windows_removable_drive_letters() -> None:
    kernel32 = FakeKernel32({"C": 3, "D": 5, "E": DRIVE_REMOVABLE, "Z": 4, "F": DRIVE_REMOVABLE})
    assert WindowsVolumes(kernel32).removable_mounts() == [Path("E:\\"), Path("F:\\")]
    assert kernel32.asked == ["C:\\", "D:\\", "E:\\", "F:\\", "Z:\\"]


def test_on_removable_and_fake(tmp_path: Path) -> None:
    stick = tmp_path / "stick"
    assert on_removable(stick / "a" / "b.csv", FakeVolumes([stick]).removable_mounts())
    assert not on_removable(tmp_path / "stick2" / "b.csv", [stick])
    check = removable_checker(FakeVolumes([stick]))
    assert check(stick / "x.csv") and not check(tmp_path / "x.csv")


def test_default_watch_folders_include_localised_and_browser_folders(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for name in ("Downloads", "桌面", "Documents", "OneDrive/文档"):
        (home / name).mkdir(parents=True)
    chrome_dir, firefox_dir, xdg_dir = tmp_path / "chrome-dl", tmp_path / "ff dl", home / "我的下载"
    for folder in (chrome_dir, firefox_dir, xdg_dir):
        folder.mkdir()
    prefs = home / "AppData/Local/Google/Chrome/User Data/Default/Preferences"
    prefs.parent.mkdir(parents=True)
    prefs.write_text(json.dumps({"download": {"default_directory": str(chrome_dir)}}), "utf-8")
    firefox = home / ".mozilla/firefox/abcd.default-release/prefs.js"
    firefox.parent.mkdir(parents=True)
    firefox.write_text(f'user_pref("browser.download.dir", {json.dumps(str(firefox_dir))});\n', "utf-8")
    (home / ".config").mkdir()
    (home / ".config/user-dirs.dirs").write_text('XDG_DOWNLOAD_DIR="$HOME/我的下载"\nXDG_DESKTOP_DIR="$HOME/桌面"\n')
    folders = default_watch_folders(home)
    assert folders == [home / "Downloads", home / "Documents", home / "桌面", home / "OneDrive/文档",
                       xdg_dir, chrome_dir, firefox_dir]
