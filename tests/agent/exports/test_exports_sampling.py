"""Sampling after the critical verdict: what is estimated, what is never skipped, what says so.

Small chunk and prefix sizes stand in for the defaults (2 MiB counted, then 1 chunk of 256 KiB in
128) so a file of ~1 MB goes through the same switch a 200 MB export does.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from exports_fakedata import Generator, write_csv

from agent.exports.sampling import EXACT, SamplingPolicy
from agent.exports.scan import scan_file
from agent.findings import Finding

SMALL = SamplingPolicy(exact_bytes=64 * 1024, chunk_bytes=8 * 1024, stride=8)


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = list(Generator(seed=5).waybill_rows(8000))
    return write_csv(tmp_path_factory.mktemp("sampling") / "waybills.csv", rows)


def _scan(path: Path, sampling: SamplingPolicy) -> Finding:
    finding = scan_file(path, sampling=sampling)
    assert finding is not None
    return finding


def test_a_critical_export_is_sampled_after_the_verdict_and_its_estimates_are_close(export: Path) -> None:
    exact, sampled = _scan(export, EXACT), _scan(export, SMALL)
    assert exact.severity == sampled.severity == "critical"
    assert "scan.sampled" not in exact.fields and sampled.fields["scan.sampled"] is True
    assert exact.fields["rows"] == exact.fields["pii.rows"] == 8000
    assert abs(sampled.fields["rows"] - 8000) <= 8000 * 0.02
    assert abs(sampled.fields["pii.rows"] - 8000) <= 8000 * 0.1
    # Distinct counts are those of the rows counted: a lower bound, and well above the prefix's.
    exact_mobiles, sampled_mobiles = exact.fields["pii.counts"]["mobile"], sampled.fields["pii.counts"]["mobile"]
    assert 1000 < sampled_mobiles < exact_mobiles
    assert sampled.title.startswith("Bulk customer data in a file: at least ")


def test_the_hash_of_a_sampled_file_is_of_every_byte(export: Path) -> None:
    expected = hashlib.sha256(export.read_bytes()).hexdigest()
    assert _scan(export, SMALL).fields["file.hash.sha256"] == expected
    assert _scan(export, EXACT).fields["file.hash.sha256"] == expected


def _price_list(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("品名,规格,单价\n")
        for index in range(rows):
            handle.write(f"纸箱{index % 97}号,{index % 50 + 10}x{index % 30 + 10}cm,{index % 900 / 10 + 1:.2f}\n")


def test_nothing_is_skipped_before_the_verdict_is_critical(tmp_path: Path) -> None:
    """A long harmless prefix, then 60 customer numbers at the very end: every one is counted."""
    gen = Generator(seed=8)
    path = tmp_path / "prices.csv"
    _price_list(path, 40_000)  # ~1 MB, sixteen times the counted prefix
    mobiles = {gen.mobile() for _ in range(60)}
    with path.open("a", encoding="utf-8") as handle:
        handle.writelines(f"回访,{mobile},1.00\n" for mobile in sorted(mobiles))
    finding = _scan(path, SMALL)
    assert finding.severity == "high"
    assert finding.fields["pii.counts"]["mobile"] == len(mobiles)
    assert "scan.sampled" not in finding.fields


def test_an_export_after_a_harmless_prefix_is_still_critical(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    _price_list(path, 40_000)
    with path.open("a", encoding="utf-8", newline="") as handle:
        handle.writelines(",".join(row) + "\n" for row in Generator(seed=9).waybill_rows(2500))
    finding = _scan(path, SMALL)
    assert finding.severity == "critical" and finding.fields["scan.sampled"] is True
    assert abs(finding.fields["pii.rows"] - 2500) <= 2500 * 0.25  # the export is 1/5 of the lines


def test_utf16_text_is_counted_in_full(export: Path, tmp_path: Path) -> None:
    """A line feed is not one byte in UTF-16, so such a file is never cut into skipped chunks."""
    path = tmp_path / "unicode.txt"
    path.write_text(export.read_text("utf-8").replace(",", "\t"), "utf-16")
    finding = _scan(path, SMALL)
    assert "scan.sampled" not in finding.fields
    assert finding.fields["pii.counts"] == _scan(export, EXACT).fields["pii.counts"]


def test_scan_exact_counts_every_row_from_the_command_line(tmp_path: Path) -> None:
    rows = list(Generator(seed=6).waybill_rows(30_000))  # ~4.5 MB: past the default 2 MiB prefix
    path = write_csv(tmp_path / "big.csv", rows)

    def scanned(*extra: str) -> str:
        done = subprocess.run([sys.executable, "-m", "agent.cli", "--config", "/dev/null", "scan", "--json",
                               *extra, "--files", str(path)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 1, done.stderr
        return done.stdout

    assert '"scan.sampled": true' in scanned()
    exact = scanned("--exact")
    assert '"scan.sampled"' not in exact and '"rows": 30000' in exact and '"pii.rows": 30000' in exact
