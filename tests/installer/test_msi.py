"""The Windows MSI, built on Linux with wixl around a staged placeholder payload and checked table by
table with msiinfo. Nothing here runs the MSI: that needs Windows (the CI workflow's job)."""

from __future__ import annotations

import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from agent import __version__
from tests.installer import msi_tables as msi

ROOT = Path(__file__).resolve().parents[2]
WINDOWS = ROOT / "installer" / "windows"
WXS = WINDOWS / "terminal-guard.wxs"
WIX_NS = "http://schemas.microsoft.com/wix/2006/wi"
MSI_BUILD_BUDGET_S = 60.0

DEFERRED = 0x400
NO_IMPERSONATE = 0x800
CONTINUE = 0x40
HIDE_TARGET = 0x2000
EXE_IN_FILE = 18
EXE_IN_PROPERTY = 50
SET_PROPERTY = 51
COMPONENT_64BIT = 256


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float, str]:
    out = tmp_path_factory.mktemp("msi")
    started = time.monotonic()
    build = subprocess.run([str(WINDOWS / "build_msi.sh"), "--staged-payload", "--out", str(out)],
                           capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - started
    assert build.returncode == 0, build.stdout + build.stderr
    files = sorted(out.glob("*.msi"))
    assert [f.name for f in files] == [f"terminal-guard-{__version__}-x64-staged.msi"]
    return files[0], elapsed, build.stdout


@pytest.fixture(scope="module")
def package(built: tuple[Path, float, str]) -> Path:
    return built[0]


def custom_action(package: Path, name: str) -> tuple[int, str, str]:
    row = msi.by_key(package, "CustomAction", "Action")[name]
    return int(row["Type"]), row["Source"], row["Target"]


def setter(package: Path, name: str) -> tuple[str, str]:
    """An immediate set-property action (type 51): (property, formatted value)."""
    kind, source, target = custom_action(package, name)
    # wixl also sets the no-impersonate bit here; Windows Installer ignores it outside the script.
    assert kind & 0x3F == SET_PROPERTY and not kind & DEFERRED, (name, kind)
    return source, target


def between(order: dict[str, int], first: str, action: str, last: str) -> bool:
    return order[first] < order[action] < order[last]


def test_msi_builds_in_under_a_minute_and_says_its_payload_is_staged(built: tuple[Path, float, str]) -> None:
    _, elapsed, said = built
    print(f"\nbuild_msi.sh --staged-payload: {elapsed:.2f} s")
    assert elapsed <= MSI_BUILD_BUDGET_S
    assert "STAGED placeholder payload" in said


def test_summary_is_a_64_bit_per_machine_package(package: Path) -> None:
    info = subprocess.run(["msiinfo", "suminfo", str(package)], capture_output=True, text=True).stdout
    assert "Template: x64;1033" in info
    props = msi.properties(package)
    assert props["ALLUSERS"] == "1"
    assert props["ProductVersion"] == __version__
    assert props["UpgradeCode"] == "{F50F282C-B490-40A3-B2BE-9402F1B49A5B}"


def test_agent_is_installed_as_an_automatic_localsystem_service_running_run(package: Path) -> None:
    service = msi.by_key(package, "ServiceInstall", "Name")["TerminalGuard"]
    assert service["StartName"] == "LocalSystem"
    assert service["StartType"] == "2"  # SERVICE_AUTO_START
    assert service["ServiceType"] == "16"  # SERVICE_WIN32_OWN_PROCESS
    assert service["Arguments"] == "run"
    component = msi.by_key(package, "Component", "Component")[service["Component_"]]
    exe = msi.by_key(package, "File", "File")[component["KeyPath"]]
    assert exe["FileName"] == "terminal-guard.exe"
    assert int(component["Attributes"]) & COMPONENT_64BIT


def test_service_is_started_on_install_stopped_always_and_removed_on_uninstall(package: Path) -> None:
    control = msi.by_key(package, "ServiceControl", "Name")["TerminalGuard"]
    install_start, install_stop, uninstall_stop, uninstall_delete = 0x1, 0x2, 0x20, 0x80
    assert int(control["Event"]) == install_start | install_stop | uninstall_stop | uninstall_delete
    assert control["Wait"] == "1"


def test_properties_have_no_empty_defaults_and_the_token_is_hidden_and_secure(package: Path) -> None:
    props = msi.properties(package)
    for name in ("HQURL", "ENROLLTOKEN", "OUTLETID", "HQCA"):
        assert name not in props, f"{name} must have no default"
        assert name in props["SecureCustomProperties"].split(";")
    assert props["MsiHiddenProperties"].split(";") == ["ENROLLTOKEN"]


def test_a_first_install_without_hq_url_and_token_is_refused_with_an_example(package: Path) -> None:
    conditions = {row["Condition"]: row["Description"] for row in msi.table(package, "LaunchCondition")}
    rule = "Installed OR WIX_UPGRADE_DETECTED OR (HQURL AND ENROLLTOKEN)"
    assert rule in conditions
    assert "msiexec /i" in conditions[rule] and "HQURL=" in conditions[rule]
    assert "Privileged" in conditions
    assert "NOT WIX_DOWNGRADE_DETECTED" in conditions


def test_tray_starts_for_every_user_from_hklm_run(package: Path) -> None:
    rows = [r for r in msi.table(package, "Registry") if r["Key"] == r"Software\Microsoft\Windows\CurrentVersion\Run"]
    assert len(rows) == 1
    run = rows[0]
    assert run["Root"] == "2"  # HKLM
    assert run["Name"] == "TerminalGuardTray"
    assert run["Value"] == '"[#TrayExe]"'
    assert msi.by_key(package, "File", "File")["TrayExe"]["FileName"] == "terminal-guard-tray.exe"
    assert int(msi.by_key(package, "Component", "Component")[run["Component_"]]["Attributes"]) & COMPONENT_64BIT


def test_major_upgrade_replaces_older_versions_and_refuses_downgrades(package: Path) -> None:
    upgrades = {row["ActionProperty"]: row for row in msi.table(package, "Upgrade")}
    older = upgrades["WIX_UPGRADE_DETECTED"]
    assert older["VersionMin"] == "" and older["VersionMax"] == __version__
    assert int(older["Attributes"]) & 0x100 == 0  # the current version itself is not "older"
    newer = upgrades["WIX_DOWNGRADE_DETECTED"]
    assert newer["VersionMin"] == __version__ and int(newer["Attributes"]) & 0x2  # detect only
    order = msi.sequence(package)
    assert between(order, "FindRelatedProducts", "LaunchConditions", "InstallValidate")
    assert between(order, "InstallValidate", "RemoveExistingProducts", "InstallInitialize")


def test_device_identity_spool_and_config_folder_holds_no_package_file(package: Path) -> None:
    directories = msi.by_key(package, "Directory", "Directory")
    assert directories["DATADIR"]["Directory_Parent"] == "CommonAppDataFolder"
    assert directories["DATADIR"]["DefaultDir"] == "TerminalGuard"
    components = msi.by_key(package, "Component", "Component")
    homes = {components[row["Component_"]]["Directory_"] for row in msi.table(package, "File")}
    assert "DATADIR" not in homes, "a file in %ProgramData%\\TerminalGuard would be removed by upgrades"
    assert any(row["Directory_"] == "DATADIR" for row in msi.table(package, "CreateFolder"))


def test_every_payload_file_lands_under_program_files(package: Path, tmp_path: Path) -> None:
    staged = tmp_path / "staged"
    subprocess.run([str(WINDOWS / "stage_payload.sh"), str(staged)], check=True)
    expected = sorted(p.name for p in staged.rglob("*") if p.is_file())
    assert sorted(row["FileName"] for row in msi.table(package, "File")) == expected
    directories = msi.by_key(package, "Directory", "Directory")

    def under_install_dir(directory: str) -> bool:
        while directory not in ("INSTALLDIR", "TARGETDIR", ""):
            directory = directories[directory]["Directory_Parent"]
        return directory == "INSTALLDIR"

    components = msi.by_key(package, "Component", "Component")
    for row in msi.table(package, "File"):
        component = components[row["Component_"]]
        assert under_install_dir(component["Directory_"]), row["FileName"]
        assert int(component["Attributes"]) & COMPONENT_64BIT, row["FileName"]
    assert directories["INSTALLDIR"]["Directory_Parent"] == "ProgramFiles64Folder"


def test_config_is_written_by_the_agent_with_the_command_line_hidden(package: Path) -> None:
    kind, source, target = custom_action(package, "WriteConfig")
    assert kind == EXE_IN_FILE | DEFERRED | NO_IMPERSONATE | HIDE_TARGET
    assert source == "AgentExe"
    assert target == 'configure --hq "[HQURL]" --token "[ENROLLTOKEN]" --outlet "[OUTLETID]" --ca "[HQCA]"'
    order = msi.sequence(package)
    assert between(order, "InstallFiles", "WriteConfig", "StartServices")
    condition = {r["Action"]: r["Condition"] for r in msi.table(package, "InstallExecuteSequence")}["WriteConfig"]
    assert condition == 'HQURL AND NOT REMOVE="ALL"'


def test_data_folder_is_locked_to_system_and_administrators_before_config_is_written(package: Path) -> None:
    kind, source, target = custom_action(package, "LockDataFolder")
    assert kind == EXE_IN_PROPERTY | DEFERRED | NO_IMPERSONATE
    assert source == "ICACLS_EXE"
    assert target.startswith('"[CommonAppDataFolder]TerminalGuard" /inheritance:r /grant:r ')
    grants = [part for part in target.split() if part.startswith("*S-")]
    assert grants == ["*S-1-5-18:(OI)(CI)F", "*S-1-5-32-544:(OI)(CI)F"]  # SYSTEM, Administrators
    assert setter(package, "SetIcaclsPath") == ("ICACLS_EXE", "[SystemFolder]icacls.exe")
    order = msi.sequence(package)
    assert order["SetIcaclsPath"] < order["InstallInitialize"]
    assert between(order, "CreateFolders", "LockDataFolder", "WriteConfig")


def test_service_restarts_on_failure_through_sc_exe(package: Path) -> None:
    kind, source, target = custom_action(package, "SetServiceRecovery")
    assert kind == EXE_IN_PROPERTY | DEFERRED | NO_IMPERSONATE
    assert source == "SC_EXE"
    assert target == "failure TerminalGuard reset= 86400 actions= restart/5000/restart/10000/restart/60000"
    assert custom_action(package, "SetRecoveryOnError")[2] == "failureflag TerminalGuard 1"
    assert setter(package, "SetScPath") == ("SC_EXE", "[SystemFolder]sc.exe")
    order = msi.sequence(package)
    assert between(order, "InstallServices", "SetServiceRecovery", "StartServices")
    assert between(order, "SetServiceRecovery", "SetRecoveryOnError", "StartServices")


def test_uninstall_reports_to_hq_after_the_service_stops_but_not_on_upgrade(package: Path) -> None:
    kind, source, target = custom_action(package, "ReportUninstall")
    assert kind == EXE_IN_FILE | CONTINUE | DEFERRED | NO_IMPERSONATE  # never blocks an uninstall
    assert (source, target) == ("AgentExe", "unenroll")
    order = msi.sequence(package)
    assert between(order, "StopServices", "ReportUninstall", "RemoveFiles")
    condition = {r["Action"]: r["Condition"] for r in msi.table(package, "InstallExecuteSequence")}["ReportUninstall"]
    assert condition == 'REMOVE="ALL" AND NOT UPGRADINGPRODUCTCODE'


def test_every_deferred_action_runs_inside_the_install_script(package: Path) -> None:
    order = msi.sequence(package)
    for row in msi.table(package, "CustomAction"):
        if int(row["Type"]) & DEFERRED:
            assert between(order, "InstallInitialize", row["Action"], "InstallFinalize"), row["Action"]


def test_wxs_is_plain_wix_v3_without_extensions() -> None:
    tree = ET.parse(WXS)  # noqa: S314 - our own source file, not untrusted input
    assert tree.getroot().tag == f"{{{WIX_NS}}}Wix"
    namespaces = {el.tag.split("}")[0].lstrip("{") for el in tree.iter() if isinstance(el.tag, str)}
    assert namespaces == {WIX_NS}, "wixl has no WiX extensions (util, firewall, ...)"
    actions = {el.get("Id") for el in tree.iter(f"{{{WIX_NS}}}CustomAction")}
    scheduled = {el.get("Action") for el in tree.iter(f"{{{WIX_NS}}}Custom")}
    assert scheduled == actions
    hidden = [el.get("Id") for el in tree.iter(f"{{{WIX_NS}}}Property") if el.get("Hidden") == "yes"]
    assert hidden == ["ENROLLTOKEN"]
    assert all(el.get("Value") is None for el in tree.iter(f"{{{WIX_NS}}}Property")
               if el.get("Id") in ("HQURL", "ENROLLTOKEN", "OUTLETID", "HQCA"))


def test_build_refuses_a_folder_that_is_not_a_payload(tmp_path: Path) -> None:
    (tmp_path / "payload").mkdir()
    out = subprocess.run([str(WINDOWS / "build_msi.sh"), "--payload", str(tmp_path / "payload"), "--out",
                          str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "has no terminal-guard.exe: not a build_payload.ps1 output" in out.stderr
    assert not (tmp_path / "out").exists()
