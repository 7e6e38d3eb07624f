"""Generated customer-like data for the export tests and benchmark. Nothing here is a real person:
numbers are drawn at random in valid shapes, names and places come from Faker's zh_CN provider."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import openpyxl
from faker import Faker

MOBILE_SEGMENTS = ("130", "135", "138", "139", "147", "150", "158", "166", "177", "186", "189", "199")
PROVINCE_AREAS = ("110105", "310104", "440305", "330106", "510107", "420106", "320102")
ROADS = ("科技", "建设", "人民", "解放", "中山", "和平", "滨江", "文化")
PLACES = (("广东省", "深圳市", "南山区"), ("浙江省", "杭州市", "西湖区"), ("四川省", "成都市", "武侯区"),
          ("江苏省", "南京市", "玄武区"), ("湖北省", "武汉市", "洪山区"), ("", "北京市", "朝阳区"))
HEADER = ["运单号", "寄件人", "寄件人电话", "寄件地址", "收件人", "收件人电话", "收件地址", "重量(kg)", "运费"]


class Generator:
    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.faker = Faker("zh_CN")
        self.faker.seed_instance(seed)

    def mobile(self) -> str:
        return self.rng.choice(MOBILE_SEGMENTS) + "".join(self.rng.choice("0123456789") for _ in range(8))

    def landline(self) -> str:
        area = self.rng.choice(("010", "021", "0755", "0571"))
        return f"{area}-{self.rng.randint(2, 8)}{self.rng.randrange(10**6, 10**7)}"

    def id_number(self) -> str:
        born = date(1950, 1, 1) + timedelta(days=self.rng.randrange(20000))
        body = f"{self.rng.choice(PROVINCE_AREAS)}{born:%Y%m%d}{self.rng.randrange(1000):03d}"
        weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
        return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]

    def waybill(self) -> str:
        return "SF" + "".join(self.rng.choice("0123456789") for _ in range(12))

    def address(self) -> str:
        province, city, district = self.rng.choice(PLACES)
        return f"{province}{city}{district}{self.rng.choice(ROADS)}路{self.rng.randint(1, 999)}号"

    def name(self) -> str:
        return str(self.faker.name())

    def waybill_row(self) -> list[str]:
        return [self.waybill(), self.name(), self.mobile(), self.address(), self.name(), self.mobile(),
                self.address(), f"{self.rng.uniform(0.1, 30):.2f}", f"{self.rng.uniform(8, 90):.2f}"]

    def waybill_rows(self, count: int) -> Iterator[list[str]]:
        for _ in range(count):
            yield self.waybill_row()


def write_csv(path: Path, rows: list[list[str]], *, encoding: str = "utf-8", delimiter: str = ",",
              header: list[str] | None = HEADER) -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def values_of(rows: list[list[str]]) -> set[str]:
    """Every generated personal value in the rows (for privacy assertions), minus numbers like 1.50."""
    return {cell for row in rows for cell in row[:7]}


def expected_counts(rows: list[list[str]]) -> dict[str, int]:
    return {
        "mobile": len({row[i] for row in rows for i in (2, 5)}),
        "landline": 0,
        "id_card": 0,
        "waybill": len({row[0] for row in rows}),
        "address": len({row[i] for row in rows for i in (3, 6)}),
        "name": len({row[i] for row in rows for i in (1, 4)}),
    }


def records(rows: list[list[str]]) -> list[dict[str, object]]:
    """Rows as nested JSON records, the shape of a waybill system's API export."""
    return [{"运单号": row[0],
             "sender": {"寄件人": row[1], "寄件人电话": row[2], "寄件地址": row[3]},
             "receiver": {"收件人": row[4], "收件人电话": row[5], "收件地址": row[6]},
             "weight": float(row[7])} for row in rows]


def xlsx_bytes(rows: list[list[str]], sheets: int = 1) -> bytes:
    workbook = openpyxl.Workbook(write_only=True)
    share = len(rows) // sheets + 1
    for index in range(sheets):
        sheet = workbook.create_sheet(f"第{index + 1}页")
        sheet.append(HEADER)
        for row in rows[index * share:(index + 1) * share]:
            # Phones as numbers, as Excel stores them when typed in: read back as digits.
            sheet.append([row[0], row[1], int(row[2]), row[3], row[4], int(row[5]), row[6], float(row[7]), row[8]])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
