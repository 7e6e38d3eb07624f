from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pefile

from agent.sensors.pe_info import PeInfoReader, PeVersionInfo, parse_version_info

AHK = {
    "CompanyName": "AutoHotkey Foundation LLC",
    "FileDescription": "AutoHotkey",
    "FileVersion": "1.1.37.2",
    "OriginalFilename": "AutoHotkey.exe",
    "ProductName": "AutoHotkey",
}


def test_generated_file_is_a_pe_that_pefile_accepts(pe_file: Callable[..., Path]) -> None:
    path = pe_file("AutoHotkey.exe", AHK)
    with pefile.PE(str(path)) as pe:
        assert pe.FILE_HEADER.Machine == 0x14C
        assert [s.Name.rstrip(b"\x00") for s in pe.sections] == [b".rsrc"]


def test_version_info_fields_are_read_from_the_resource(pe_file: Callable[..., Path]) -> None:
    info = parse_version_info(str(pe_file("AutoHotkey.exe", AHK)))
    assert info == PeVersionInfo(
        original_file_name="AutoHotkey.exe",
        company="AutoHotkey Foundation LLC",
        product="AutoHotkey",
        description="AutoHotkey",
    )


def test_renamed_tool_still_tells_its_original_name(pe_file: Callable[..., Path]) -> None:
    info = parse_version_info(str(pe_file("notepad.exe", AHK)))
    assert info is not None and info.original_file_name == "AutoHotkey.exe"


def test_chinese_version_strings_survive(pe_file: Callable[..., Path]) -> None:
    strings = {"CompanyName": "南京奥拓软件技术有限公司", "ProductName": "按键精灵", "FileDescription": "按键精灵2014"}
    info = parse_version_info(str(pe_file("MyKeys.exe", strings)))
    assert info == PeVersionInfo(
        original_file_name=None, company="南京奥拓软件技术有限公司", product="按键精灵", description="按键精灵2014"
    )


def test_blank_values_are_none(pe_file: Callable[..., Path]) -> None:
    info = parse_version_info(str(pe_file("x.exe", {"CompanyName": "  ", "ProductName": "ShadowBot"})))
    assert info == PeVersionInfo(product="ShadowBot")


def test_pe_without_version_resource_gives_none(pe_file: Callable[..., Path]) -> None:
    assert parse_version_info(str(pe_file("plain.exe", None))) is None


def test_non_pe_truncated_and_missing_files_give_none(tmp_path: Path, pe_file: Callable[..., Path]) -> None:
    elf = tmp_path / "elf"
    elf.write_bytes(b"\x7fELF" + os.urandom(200))
    whole = pe_file("whole.exe", AHK).read_bytes()
    truncated = tmp_path / "truncated.exe"
    truncated.write_bytes(whole[:0x120])
    cut_resource = tmp_path / "cut.exe"
    cut_resource.write_bytes(whole[: 0x200 + 100])
    for path in (elf, truncated, cut_resource, tmp_path / "missing.exe"):
        assert parse_version_info(str(path)) is None, path


def test_files_over_the_size_cap_are_not_parsed(pe_file: Callable[..., Path]) -> None:
    path = pe_file("big.exe", AHK)
    assert parse_version_info(str(path), max_file_bytes=100) is None


def test_reader_answers_none_off_windows(pe_file: Callable[..., Path]) -> None:
    reader = PeInfoReader(platform_name="linux")
    assert reader.read(str(pe_file("AutoHotkey.exe", AHK))) is None


def test_reader_on_windows_caches_until_the_file_changes(pe_file: Callable[..., Path]) -> None:
    path = pe_file("tool.exe", AHK)
    reader = PeInfoReader(platform_name="win32")
    first = reader.read(str(path))
    assert first is not None and first.company == "AutoHotkey Foundation LLC"
    assert reader.read(str(path)) is first
    pe_file("tool.exe", {"CompanyName": "Charles Proxy", "OriginalFilename": "Charles.exe"})
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = reader.read(str(path))
    assert second == PeVersionInfo(original_file_name="Charles.exe", company="Charles Proxy")
    assert reader.read(None) is None
