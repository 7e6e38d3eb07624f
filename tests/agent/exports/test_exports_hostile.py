"""Hostile and broken files are refused safely, each with a reason; none raises out of a scan."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from exports_fakedata import Generator, write_csv, xlsx_bytes

from agent.exports.scan import inspect_file, scan_paths


@pytest.fixture(scope="module")
def rows() -> list[list[str]]:
    return list(Generator(seed=9).waybill_rows(120))


def only_skip(path: Path) -> str:
    outcome = inspect_file(path)
    assert outcome.finding is None
    assert len(outcome.skipped) == 1, outcome.skipped
    return outcome.skipped[0][1]


def test_zip_bomb_is_refused_before_inflating(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    chunk = b"0" * (1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive, \
            archive.open("zeros.csv", "w") as member:
        for _ in range(64):
            member.write(chunk)
    assert path.stat().st_size < 200_000
    assert "compression ratio" in only_skip(path)


def test_archive_over_the_unpacked_budget_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for index in range(1001):
            archive.writestr(f"f{index}.txt", "x")
    assert "1001 members" in only_skip(path)


def test_archives_nested_three_deep_are_not_opened(rows: list[list[str]], tmp_path: Path) -> None:
    write_csv(tmp_path / "e.csv", rows)
    payload = (tmp_path / "e.csv").read_bytes()
    for level in range(3):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(f"level{level}.{'csv' if level == 0 else 'zip'}", payload)
        payload = buffer.getvalue()
    path = tmp_path / "deep.zip"
    path.write_bytes(payload)
    outcome = inspect_file(path)
    assert outcome.finding is None
    assert any("nested deeper than 2" in reason for _, reason in outcome.skipped), outcome.skipped


def test_encrypted_member_is_skipped_and_the_rest_is_read(rows: list[list[str]], tmp_path: Path) -> None:
    path = tmp_path / "mixed.zip"
    write_csv(tmp_path / "e.csv", rows)
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(tmp_path / "e.csv", "plain.csv")
        archive.writestr("secret.csv", "x")
    data = bytearray(path.read_bytes())
    # Set the "encrypted" flag of the second member in its local header and central directory.
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        position = data.rfind(signature)
        data[position + offset] |= 0x1
    path.write_bytes(bytes(data))
    outcome = inspect_file(path)
    assert outcome.finding is not None
    assert outcome.skipped == [("mixed.zip!secret.csv", "encrypted member: cannot be read without the password")]


def test_truncated_xlsx_is_skipped_with_a_reason(rows: list[list[str]], tmp_path: Path) -> None:
    path = tmp_path / "cut.xlsx"
    data = xlsx_bytes(rows)
    path.write_bytes(data[: len(data) // 2])
    assert "damaged" in only_skip(path)


def test_random_binary_and_binary_named_csv_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "random.bin").write_bytes(os.urandom(100_000))
    (tmp_path / "fake.csv").write_bytes(os.urandom(100_000))
    report = scan_paths([tmp_path])
    assert report.findings == []
    assert sorted(reason.split(" (")[0] for _, reason in report.skipped) == ["binary or unknown content"] * 2


def test_large_sparse_file_is_refused_from_its_first_chunk(tmp_path: Path) -> None:
    path = tmp_path / "sparse.csv"
    with path.open("wb") as handle:
        handle.truncate(2 * 1024**3)
    assert "NUL bytes" in only_skip(path)


def test_one_huge_line_is_read_in_bounded_pieces(tmp_path: Path) -> None:
    path = tmp_path / "oneline.txt"
    generator = Generator(seed=3)
    path.write_text(" ".join(generator.mobile() for _ in range(400_000)), "utf-8")  # ~4.8 MB, no newline
    outcome = inspect_file(path)
    assert outcome.finding is not None and outcome.finding.severity == "critical"


def test_fifo_symlink_loop_and_gbk_file_name(rows: list[list[str]], tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.csv")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "dirloop").symlink_to(tmp_path, target_is_directory=True)
    gbk_name = os.fsdecode("客户导出".encode("gbk") + b".csv")
    write_csv(tmp_path / gbk_name, rows)
    report = scan_paths([tmp_path])
    reasons = dict(report.skipped)
    assert reasons[str(tmp_path / "pipe.csv")].startswith("not a regular file")
    assert reasons[str(tmp_path / "loop")].startswith("cannot open")
    assert [finding.fields["file.path"] for finding in report.findings] == [str(tmp_path / "客户导出.csv")]


def test_file_deleted_after_listing_is_reported(tmp_path: Path) -> None:
    report = scan_paths([tmp_path / "gone.csv"])
    assert report.skipped == [(str(tmp_path / "gone.csv"), "no such file or folder")]


def test_malformed_json_and_deep_nesting_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"a": [1, 2', "utf-8")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000, "utf-8")
    (tmp_path / "deepdoc.json").write_text('{"a":' * 100_000 + "1" + "}" * 100_000, "utf-8")
    report = scan_paths([tmp_path])
    assert report.findings == []
    assert len(report.skipped) == 3, report.skipped
    assert all("JSON" in reason for _, reason in report.skipped)


def test_ole_file_that_is_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "fake.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + os.urandom(4000))
    assert "not a readable .xls workbook" in only_skip(path)


def test_file_broken_part_way_is_judged_on_what_was_read(rows: list[list[str]], tmp_path: Path) -> None:
    path = write_csv(tmp_path / "broken.csv", rows)
    with path.open("a", encoding="utf-8") as handle:
        handle.write('x,"' + "y" * 200_000 + '"\n')  # a field beyond the CSV field limit
        handle.write(",".join(rows[0]) + "\n")
    outcome = inspect_file(path)
    assert outcome.finding is not None
    assert outcome.finding.fields["rows"] == len(rows)
    assert outcome.finding.fields["scan.incomplete"].startswith("malformed delimited text near line")


def test_cells_of_address_unit_characters_never_reach_the_backtracking_matcher(
    rows: list[list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "市市市…" makes Python's `re` backtrack (~0.7 ms a character: a planted file would hold up the
    # scan of a real export for minutes); such lines go to the linear RE2 matcher instead.
    from agent.exports import patterns

    plain = inspect_file(write_csv(tmp_path / "plain.csv", rows)).finding
    planted = [*rows[:60], ["x", "市" * 20_000, "中市" * 5_000], *rows[60:]]
    path = write_csv(tmp_path / "planted.csv", planted)
    backtracking = patterns.ADDRESS

    class Guarded:
        def __getattr__(self, name: str) -> object:
            method = getattr(backtracking, name)

            def guarded(text: str, *args: object) -> object:
                assert text.count("市") <= patterns.UNIT_HEAVY, "a heavy line reached the backtracking matcher"
                return method(text, *args)

            return guarded

    monkeypatch.setattr(patterns, "ADDRESS", Guarded())
    found = inspect_file(path).finding
    assert plain is not None and found is not None
    assert found.fields["pii.counts"] == plain.fields["pii.counts"]


# As root every folder is readable, so the scan runs in a child that has given root up (after
# importing the scanner, which may live where an unprivileged user cannot read).
_UNPRIVILEGED_SCAN = """
import json, os, sys
from pathlib import Path
import agent.exports.formats, agent.exports.text_reader, agent.exports.scan as scan
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
report = scan.scan_paths([Path(sys.argv[1])])
print(json.dumps({"findings": [f.fields["file.path"] for f in report.findings], "skipped": report.skipped,
                  "scanned": report.scanned}))
"""


def test_unreadable_folders_and_files_are_reported_and_the_rest_is_scanned(rows: list[list[str]]) -> None:
    root = Path(tempfile.mkdtemp(prefix="tg-unreadable-"))  # not under pytest's root-only tmp
    try:
        root.chmod(0o755)
        write_csv(root / "readable.csv", rows)
        locked = root / "locked"
        locked.mkdir()
        write_csv(locked / "hidden.csv", rows)
        locked.chmod(0)
        write_csv(root / "locked.csv", rows).chmod(0)
        done = subprocess.run([sys.executable, "-c", _UNPRIVILEGED_SCAN, str(root)], capture_output=True,
                              text=True, timeout=60, cwd=Path(__file__).resolve().parents[3])
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
    finally:
        (root / "locked").chmod(0o755)
        shutil.rmtree(root)
    assert report["findings"] == [str(root / "readable.csv")]
    assert report["scanned"] == 1
    assert sorted(map(tuple, report["skipped"])) == [
        (str(root / "locked"), "folder not readable: Permission denied"),
        (str(root / "locked.csv"), "cannot open: Permission denied"),
    ]
