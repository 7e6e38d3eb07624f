"""Severity from thresholds, the finding's shape, and benign files that must stay quiet."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
import pytest
from exports_fakedata import Generator, write_csv

from agent.exports.scan import scan_file, scan_paths
from agent.policy import Thresholds
from agent.sensors.observations import ProcessInfo


@pytest.fixture
def gen() -> Generator:
    return Generator(seed=21)


def test_two_thousand_waybill_rows_are_critical_with_the_full_field_set(gen: Generator, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "运单导出.csv", list(gen.waybill_rows(2000)))
    process = ProcessInfo(pid=4242, name="scraper.exe", exe="C:\\Tools\\scraper.exe")
    finding = scan_file(path, removable=True, process=process)
    assert finding is not None
    assert (finding.rule, finding.category, finding.severity) == ("export.bulk_customer_data", "export", "critical")
    fields = finding.to_dict()
    assert fields["file.path"] == str(path)
    assert fields["file.size"] == path.stat().st_size
    assert len(fields["file.hash.sha256"]) == 64
    assert fields["file.removable"] is True
    assert fields["rows"] == 2000 and fields["pii.rows"] == 2000
    assert fields["pii.counts"]["mobile"] > 3900 and fields["pii.counts"]["waybill"] == 2000
    assert fields["pii.headers"] == ["address", "name", "phone", "waybill"]
    assert (fields["process.pid"], fields["process.name"], fields["process.executable"]) == (
        4242, "scraper.exe", "C:\\Tools\\scraper.exe")
    json.dumps(fields, ensure_ascii=False)  # serialisable as it is


def test_fifty_mobiles_without_header_are_high(gen: Generator, tmp_path: Path) -> None:
    path = tmp_path / "numbers.txt"
    path.write_text("\n".join(gen.mobile() for _ in range(50)), "utf-8")
    finding = scan_file(path)
    assert finding is not None and finding.severity == "high"


def test_twenty_phone_address_rows_are_high(gen: Generator, tmp_path: Path) -> None:
    rows = [["x", "", gen.mobile(), gen.address()] for _ in range(20)]
    path = write_csv(tmp_path / "few.csv", rows, header=None)
    finding = scan_file(path)
    assert finding is not None and finding.severity == "high"
    assert finding.fields["pii.rows"] == 20


def test_ten_rows_under_personal_headers_are_medium_and_nine_nothing(gen: Generator, tmp_path: Path) -> None:
    header = ["姓名", "手机"]
    ten = write_csv(tmp_path / "ten.csv", [[gen.name(), gen.mobile()] for _ in range(10)], header=header)
    nine = write_csv(tmp_path / "nine.csv", [[gen.name(), gen.mobile()] for _ in range(9)], header=header)
    finding = scan_file(ten)
    assert finding is not None and finding.severity == "medium"
    assert scan_file(nine) is None


def test_policy_thresholds_move_the_boundaries(gen: Generator, tmp_path: Path) -> None:
    path = tmp_path / "numbers.txt"
    path.write_text("\n".join(gen.mobile() for _ in range(30)), "utf-8")
    assert scan_file(path) is None
    strict = Thresholds(export_high_mobiles=25, export_high_rows=5, export_critical=30)
    finding = scan_file(path, thresholds=strict)
    assert finding is not None and finding.severity == "critical"


def test_price_list_is_quiet(gen: Generator, tmp_path: Path) -> None:
    rows = [[f"{city}-{region}", f"{weight}kg", f"{gen.rng.uniform(5, 80):.2f}", "0755-" + "2" + "3" * 7]
            for city in ("广东省深圳市", "浙江省杭州市", "北京市") for region in ("同城", "省内", "省外")
            for weight in range(1, 30)]
    path = write_csv(tmp_path / "价格表.csv", rows, header=["线路", "重量", "价格", "客服电话"])
    assert scan_file(path) is None


def test_inventory_with_eleven_digit_skus_is_quiet(gen: Generator, tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["SKU", "品名", "库存", "仓库"])
    for index in range(800):
        sku = f"{gen.rng.choice('2456789')}{gen.rng.randrange(10**10):010d}"  # 11 digits, no mobile prefix
        sheet.append([int(sku), f"纸箱{index % 7}号", gen.rng.randint(0, 500), "一号仓"])
    path = tmp_path / "库存.xlsx"
    workbook.save(path)
    assert scan_file(path) is None


def test_five_colleagues_contact_list_is_quiet(gen: Generator, tmp_path: Path) -> None:
    rows = [[gen.name(), gen.mobile(), "网点" + str(index)] for index in range(5)]
    path = write_csv(tmp_path / "同事通讯录.csv", rows, header=["姓名", "手机", "岗位"])
    assert scan_file(path) is None


def test_bulk_waybill_numbers_alone_are_high_with_a_waybill_column(gen: Generator, tmp_path: Path) -> None:
    path = tmp_path / "单号.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["运单号", "状态"])
        writer.writerows([gen.waybill(), "已签收"] for _ in range(1000))
    finding = scan_file(path)
    assert finding is not None and finding.severity == "high"


def test_scan_paths_walks_folders_once_per_file_and_reports_skips(gen: Generator, tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    (folder / "sub").mkdir(parents=True)
    write_csv(folder / "a.csv", list(gen.waybill_rows(60)))
    write_csv(folder / "sub" / "b.csv", list(gen.waybill_rows(60)))
    (folder / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (folder / "link.csv").symlink_to(folder / "a.csv")
    report = scan_paths([folder, folder / "a.csv"], removable=lambda path: path.name == "b.csv")
    assert report.scanned == 3
    assert sorted((Path(f.fields["file.path"]).name, f.fields["file.removable"]) for f in report.findings) == [
        ("a.csv", False), ("b.csv", True)]
    assert report.skipped == [(str(folder / "logo.png"), "unsupported format: PNG image")]
