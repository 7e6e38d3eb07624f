"""Bad rules are rejected with an error naming the file and the field; good rules are kept."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agent.rules import RuleError, RuleSet, lint
from tests.agent.rules.builders import proc, rule_text

GOOD = rule_text("sel:\n  Image|endswith: '\\ToDesk.exe'\ncondition: sel", title="Good")


def errors_of(text: str, name: str = "bad.yml") -> list[RuleError]:
    rules, errors = RuleSet.from_texts([(name, text)])
    assert len(rules) == 0, "a rejected rule must not be loaded"
    assert errors, "a rejected rule must say why"
    return errors


def only_error(text: str) -> RuleError:
    (error,) = errors_of(text)
    assert error.file == "bad.yml"
    return error


def test_rule_error_prints_file_field_and_message() -> None:
    assert str(RuleError("a.yml", "logsource.category", "boom")) == "a.yml: logsource.category: boom"


def test_yaml_syntax_error_names_the_line() -> None:
    error = only_error("title: x\ndetection:\n  sel: [unclosed\n")
    assert error.field == "yaml"
    assert "line" in error.message


def test_duplicate_yaml_keys_are_rejected() -> None:
    error = only_error(GOOD.replace("status: test", "status: test\nstatus: stable"))
    assert error.field == "yaml"
    assert "Duplicate key" in error.message


@pytest.mark.parametrize(("text", "message"), [("- a\n- b\n", "got a list"), ("just text\n", "got a string"),
                                               ("", "empty")])
def test_a_document_that_is_not_a_rule_mapping(text: str, message: str) -> None:
    error = only_error(text)
    assert error.field == "document"
    assert message in error.message


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (("title: Good\n", ""), "title", "must have a title"),
        (("status: test", "status: shiny"), "status", "not a valid"),
        (("status: test", "status: unsupported"), "status", "must not run"),
        (("level: high", "level: severe"), "level", "not a valid"),
        (("level: high", "level: [high]"), "level", "must be a string"),
        (("status: test", "status: test\ntags: attack"), "tags", "must be a list"),
        (("status: test", "status: test\ntags: [tg.category.bogus]"), "tags", "tg.category.bogus"),
        (("status: test", "status: test\ntags: [tg.category.tunnel, tg.category.automation]"), "tags", "more than one"),
        (("status: test", "status: test\ndate: yesterday"), "date", "yyyy-mm-dd"),
        (("status: test", "status: test\nfalsepositives: none"), "falsepositives", "must be a list"),
    ],
)
def test_metadata_errors_name_their_field(change: tuple[str, str], field: str, message: str) -> None:
    error = only_error(GOOD.replace(*change, 1))
    assert error.field == field
    assert message in error.message


@pytest.mark.parametrize("bad_id", ["id: not-a-uuid", "id: 12345", "id: [a]"])
def test_bad_rule_id(bad_id: str) -> None:
    text = "\n".join(bad_id if line.startswith("id:") else line for line in GOOD.splitlines())
    error = only_error(text)
    assert error.field == "id"


@pytest.mark.parametrize(
    ("logsource", "field", "message"),
    [
        ("category: file_event", "logsource.category", "'file_event' is not supported"),
        ("category: process_creation\n    service: sysmon", "logsource.service", "not supported"),
        ("category: process_creation\n    product: zeek", "logsource.product", "'zeek' is not supported"),
        ("product: windows", "logsource.category", "missing"),
        ("category: [process_creation]", "logsource.category", "expected a string"),
    ],
)
def test_unsupported_log_sources_are_rejected_with_a_reason(logsource: str, field: str, message: str) -> None:
    text = GOOD.replace("category: process_creation", logsource)
    assert any(e.field == field and message in e.message for e in errors_of(text)), errors_of(text)


def test_missing_log_source() -> None:
    text = GOOD.replace("logsource:\n    category: process_creation\n", "")
    assert any(e.field == "logsource" for e in errors_of(text))


@pytest.mark.parametrize(
    ("detection", "field", "message"),
    [
        ("sel:\n  CommandLine|foo: x\ncondition: sel", "detection.sel.CommandLine|foo", "unknown modifier 'foo'"),
        ("sel:\n  User|expand: '%admins%'\ncondition: sel", "detection.sel.User|expand", "'expand' is not supported"),
        ("sel:\n  Image|fieldref: ParentImage\ncondition: sel", "detection.sel.Image|fieldref", "fieldref"),
        ("sel:\n  Image|hour: 3\ncondition: sel", "detection.sel.Image|hour", "timestamp"),
        ("sel:\n  IntegrityLevel: System\ncondition: sel", "detection.sel.IntegrityLevel",
         "field 'IntegrityLevel' is not provided for process_creation events"),
        ("sel:\n  - Image: a\n  - LogonId: '0x3e7'\ncondition: sel", "detection.sel[1].LogonId", "LogonId"),
        ("sel:\n  CommandLine|re: '(unclosed'\ncondition: sel", "detection.sel.CommandLine|re", "invalid"),
        ("sel:\n  CommandLine|re: 5\ncondition: sel", "detection.sel.CommandLine|re", "must be a string"),
        ("sel:\n  CommandLine|cidr: '10.0.0.0/33'\ncondition: sel", "detection.sel.CommandLine|cidr", "CIDR"),
        ("sel:\n  CommandLine|base64: 'a*b'\ncondition: sel", "detection.sel.CommandLine|base64", "wildcards"),
        ("sel:\n  CommandLine: {a: b}\ncondition: sel", "detection.sel.CommandLine", "got a mapping"),
        ("sel:\n  CommandLine: []\ncondition: sel", "detection.sel.CommandLine", "empty list"),
        ("sel: {}\ncondition: sel", "detection.sel", "empty"),
        ("sel:\n  - [a, b]\ncondition: sel", "detection.sel[0]", "got a list"),
        ("sel:\n  Image: x\n", "detection.condition", "missing"),
        ("sel:\n  Image: x\ncondition: other", "detection.condition", "'other' not defined"),
        ("sel:\n  Image: x\ncondition: 1 of nothing_*", "detection.condition", "doesn't match any"),
        ("sel:\n  Image: x\ncondition: sel and and sel", "detection.condition", "Expected"),
        ("sel:\n  Image: x\ncondition: sel | count() > 5", "detection.condition", "aggregations"),
        ("sel:\n  Image: x\ncondition: sel | near other", "detection.condition", "aggregations"),
        ("sel:\n  Image: x\ntimeframe: 5m\ncondition: sel", "detection.timeframe", "not supported"),
        ("condition: sel", "detection", "no search identifiers"),
    ],
)
def test_detection_errors_name_the_search_and_the_field(detection: str, field: str, message: str) -> None:
    errors = errors_of(rule_text(detection))
    assert any(e.field == field and message in e.message for e in errors), errors


def test_detection_that_is_not_a_mapping() -> None:
    text = GOOD.split("detection:")[0] + "detection: [a, b]\n"
    error = only_error(text)
    assert (error.field, error.message) == ("detection", "expected a mapping of search identifiers and a "
                                                         "condition, got a list")


def test_unknown_network_field_names_the_network_log_source() -> None:
    errors = errors_of(rule_text("sel:\n  ParentImage: x\ncondition: sel", category="network_connection"))
    assert any("not provided for network_connection events" in e.message for e in errors)


def test_several_problems_in_one_rule_are_all_reported() -> None:
    text = rule_text("sel:\n  CommandLine|bogus: x\n  LogonId: 1\ncondition: sel").replace("level: high", "level: x")
    fields = {e.field for e in errors_of(text)}
    assert {"level", "detection.sel.CommandLine|bogus", "detection.sel.LogonId"} <= fields


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ("title: c\ncorrelation:\n  type: event_count\n  rules: [x]\n  group-by: [User]\n  timespan: 5m\n"
         "  condition: {gte: 10}\n", "correlation"),
        ("title: f\nfilter:\n  rules: [x]\n  selection: {User: admin}\n  condition: not selection\n", "filter"),
        ("action: global\ntitle: g\n", "action"),
    ],
)
def test_correlations_filters_and_collection_actions_are_rejected(document: str, field: str) -> None:
    error = only_error(document)
    assert error.field == field


def test_yaml_alias_bomb_is_rejected_quickly() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(6)
    )
    error = only_error(bomb)
    assert error.field == "document"
    assert "aliases" in error.message


def test_oversized_file_is_rejected() -> None:
    error = only_error(GOOD + "# " + "x" * (1 << 20) + "\n")
    assert error.field == "document"
    assert "larger than" in error.message


def test_good_rules_are_kept_next_to_bad_ones() -> None:
    rules, errors = RuleSet.from_texts([("good.yml", GOOD), ("bad.yml", GOOD.replace("level: high", "level: x"))])
    assert len(rules) == 1
    assert [e.file for e in errors] == ["bad.yml"]
    assert rules.match_process(proc(r"C:\PF\ToDesk.exe", "ToDesk.exe"))


def test_multi_document_file_reports_the_bad_document_by_number() -> None:
    text = GOOD + "---\n" + GOOD.replace("level: high", "level: nope")
    rules, errors = RuleSet.from_texts([("pack.yml", text)])
    assert len(rules) == 1
    assert [(e.file, e.field) for e in errors] == [("pack.yml#2", "level")]


def test_duplicate_rule_ids_are_rejected() -> None:
    rules, errors = RuleSet.from_texts([("a.yml", GOOD), ("b.yml", GOOD)])
    assert len(rules) == 1
    (error,) = errors
    assert (error.file, error.field) == ("b.yml", "id")
    assert "already used by a.yml" in error.message


def test_category_comes_from_attack_technique_then_log_source() -> None:
    base = rule_text("sel:\n  Image|endswith: '\\x.exe'\ncondition: sel")
    with_tag = rule_text("sel:\n  Image|endswith: '\\x.exe'\ncondition: sel").replace(
        "status: test", "status: test\ntags: [attack.command-and-control, attack.t1219.002]")
    net = rule_text("sel:\n  DestinationPort: 1\ncondition: sel", category="network_connection")
    rules, errors = RuleSet.from_texts([("a.yml", with_tag), ("b.yml", base), ("c.yml", net)])
    assert errors == []
    assert [(r.file, r.category) for r in rules.rules] == [("a.yml", "remote_access"), ("b.yml", "scripting"),
                                                          ("c.yml", "remote_access")]


@pytest.mark.parametrize(("level", "severity"), [("informational", "low"), ("low", "low"), ("medium", "medium"),
                                                 ("high", "high"), ("critical", "critical")])
def test_sigma_levels_map_to_severities(level: str, severity: str) -> None:
    rules, _ = RuleSet.from_texts([("a.yml", GOOD.replace("level: high", f"level: {level}"))])
    assert rules.rules[0].severity == severity


def test_rule_without_id_is_keyed_by_name_then_file() -> None:
    no_id = "\n".join(line for line in GOOD.splitlines() if not line.startswith("id:")) + "\n"
    named = no_id.replace("status: test", "status: test\nname: todesk_exec")
    rules, errors = RuleSet.from_texts([("rules/todesk.yml", no_id), ("named.yml", named)])
    assert errors == []
    assert [r.rule for r in rules.rules] == ["todesk", "todesk_exec"]


# ---------------------------------------------------------------- files, folders and lint


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_from_paths_reads_files_and_folders_recursively(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", GOOD)
    write(tmp_path, "deep/b.yaml", rule_text("sel:\n  Image|endswith: '\\frpc.exe'\ncondition: sel"))
    write(tmp_path, "notes.txt", "not a rule")
    single = write(tmp_path / "elsewhere", "c.rule", rule_text("sel:\n  Image: x\ncondition: sel"))
    rules, errors = RuleSet.from_paths([tmp_path / "a.yml", tmp_path / "deep", single])
    assert errors == []
    assert len(rules) == 3


def test_from_paths_reports_missing_and_undecodable_files(tmp_path: Path) -> None:
    (tmp_path / "latin1.yml").write_bytes("title: caf\xe9\n".encode("latin-1"))
    rules, errors = RuleSet.from_paths([tmp_path / "missing.yml", tmp_path / "latin1.yml"])
    assert len(rules) == 0
    assert [(Path(e.file).name, e.field) for e in errors] == [("missing.yml", "path"), ("latin1.yml", "path")]
    assert "no such file" in errors[0].message
    assert "not UTF-8" in errors[1].message


def test_lint_names_file_and_field_of_every_problem(tmp_path: Path) -> None:
    write(tmp_path, "good.yml", GOOD)
    bad = write(tmp_path, "bad.yml", textwrap.dedent("""\
        title: Uses an unknown modifier
        logsource:
            category: process_creation
        detection:
            selection:
                CommandLine|containz: 'x'
            condition: selection
        """))
    errors = lint([tmp_path])
    assert [(e.file, e.field) for e in errors] == [(str(bad), "detection.selection.CommandLine|containz")]
    assert str(errors[0]).startswith(f"{bad}: detection.selection.CommandLine|containz: unknown modifier 'containz'")


def test_lint_of_valid_rules_is_empty(tmp_path: Path) -> None:
    write(tmp_path, "good.yml", GOOD)
    assert lint([tmp_path]) == []


def test_lint_flags_a_folder_without_rules(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (error,) = lint([tmp_path / "empty"])
    assert error.field == "path"
    assert "no rule files" in error.message
