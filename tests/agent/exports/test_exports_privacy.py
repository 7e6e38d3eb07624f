"""The guard must not become the leak: no generated value in the finding or in any log line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from exports_fakedata import Generator, records, values_of, write_csv

from agent.exports.scan import scan_paths


def test_no_generated_value_reaches_the_finding_or_the_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    gen = Generator(seed=99)
    rows = list(gen.waybill_rows(1500))
    ids = [gen.id_number() for _ in range(1500)]
    for row, id_number in zip(rows, ids, strict=True):
        row.append(id_number)
    write_csv(tmp_path / "export.csv", rows, header=None)
    (tmp_path / "api.json").write_text(json.dumps(records(rows[:200]), ensure_ascii=False), "utf-8")
    (tmp_path / "broken.json").write_text(json.dumps(records(rows[:5]), ensure_ascii=False)[:-40], "utf-8")
    with caplog.at_level(logging.DEBUG):
        report = scan_paths([tmp_path])
    by_name = {Path(finding.fields["file.path"]).name: finding for finding in report.findings}
    assert sorted(by_name) == ["api.json", "export.csv"]
    assert by_name["export.csv"].fields["pii.counts"]["id_card"] == 1500
    assert [path for path, _ in report.skipped] == [str(tmp_path / "broken.json")]
    published = json.dumps([finding.to_dict() for finding in report.findings], ensure_ascii=False)
    published += json.dumps([finding.to_event().to_wire() for finding in report.findings], ensure_ascii=False)
    published += json.dumps(report.skipped, ensure_ascii=False)
    logged = "\n".join(record.getMessage() for record in caplog.records) + caplog.text
    secrets = values_of(rows) | set(ids)
    secrets |= {value[-4:] + value[:3] for value in secrets if value.isdigit()}  # no pieces either
    for text in (published, logged):
        leaked = [value for value in secrets if value in text]
        assert leaked == []
    for value in [row[2] for row in rows[:50]]:  # nor masked: 138****8000
        assert f"{value[:3]}****{value[-4:]}" not in published


def test_an_export_named_after_a_customer_is_reported_without_the_number(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gen = Generator(seed=101)
    rows = list(gen.waybill_rows(600))
    phone, id_number, waybill = gen.mobile(), gen.id_number(), gen.waybill()
    folder = tmp_path / f"{id_number}"
    folder.mkdir()
    write_csv(folder / f"客户{phone}_{waybill}.csv", rows)
    with caplog.at_level(logging.DEBUG):
        [finding] = scan_paths([tmp_path]).findings
    assert finding.fields["file.path"] == f"{tmp_path}/<id_number>/客户<phone>_<waybill>.csv"
    published = json.dumps(finding.to_event().to_wire(), ensure_ascii=False)
    logged = "\n".join(record.getMessage() for record in caplog.records) + caplog.text
    for text in (published, logged):
        assert [value for value in (phone, id_number, waybill) if value in text] == []
