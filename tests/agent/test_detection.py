import time

from agent.detection.dedupe import Dedupe
from agent.detection.judge import judge_connections, judge_session
from agent.findings import Finding
from agent.sensors.observations import NetworkConnection, ProcessInfo, RemoteSession


def conn(exe: str, group: str | None = "protected", direction: str = "outbound") -> NetworkConnection:
    name = exe.replace("\\", "/").rsplit("/", 1)[-1]
    return NetworkConnection(process=ProcessInfo(pid=42, name=name, exe=exe), local_ip="10.0.0.5",
                             local_port=50000, remote_ip="10.9.9.9", remote_port=443, direction=direction,
                             status="ESTABLISHED", observed_at=time.time(), remote_group=group)


def test_an_unapproved_program_talking_to_the_waybill_system_is_scripting():
    findings = judge_connections([conn(r"C:\Python311\python.exe")], [r"C:\Program Files\Waybill\waybill.exe"])
    assert [(f.category, f.severity, f.fields["process.name"]) for f in findings] == [
        ("scripting", "high", "python.exe")]


def test_the_approved_client_and_other_hosts_are_not_findings():
    approved = [r"C:\Program Files\Waybill\waybill.exe"]
    assert judge_connections([conn(r"C:\Program Files\Waybill\waybill.exe")], approved) == []
    assert judge_connections([conn(r"C:\Python311\python.exe", group=None)], approved) == []
    assert judge_connections([conn(r"C:\Python311\python.exe", direction="inbound")], approved) == []


def test_inbound_remote_sessions_are_remote_access_and_local_logins_are_not():
    vnc = judge_session(RemoteSession(user=None, kind="vnc", source_ip="203.0.113.9", observed_at=1.0))
    assert vnc is not None and vnc.category == "remote_access" and vnc.fields["source.ip"] == "203.0.113.9"
    assert judge_session(RemoteSession(user="clerk", kind="tty", source_ip=None, observed_at=1.0)) is None


def test_a_tool_left_running_is_one_finding_per_window():
    clock = [0.0]
    dedupe = Dedupe(window_s=600, clock=lambda: clock[0])
    finding = Finding("r1", "t", "high", "automation", {"process.executable": "/x/chromedriver"})
    assert dedupe.fresh(finding)
    clock[0] = 300
    assert not dedupe.fresh(finding)
    assert dedupe.fresh(Finding("r1", "t", "high", "automation", {"process.executable": "/y/other"}))
    clock[0] = 901
    assert dedupe.fresh(finding)


def test_repeats_are_folded_into_the_next_report_with_their_count():
    clock = [0.0]
    dedupe = Dedupe(window_s=600, clock=lambda: clock[0])
    finding = Finding("r1", "t", "high", "scripting", {"process.executable": "/usr/bin/python3"})
    first = dedupe.admit(finding)
    assert first is finding and "repeats" not in first.fields
    for step in range(1, 6):  # a script relaunched every minute
        clock[0] = step * 60.0
        assert dedupe.admit(finding) is None
    clock[0] = 600.0
    second = dedupe.admit(finding)
    assert second is not None and second.fields["repeats"] == 5 and dedupe.suppressed == 5
    clock[0] = 1300.0
    third = dedupe.admit(finding)
    assert third is not None and "repeats" not in third.fields


def test_idle_detection_and_export_scan_threads_stop_at_once_when_woken():
    import queue

    from agent.detection.exports_worker import ExportScanner
    from agent.detection.pipeline import Detection
    from agent.policy import CurrentPolicy
    from agent.workers import Worker

    policy = CurrentPolicy(None)
    detection = Detection(policy=policy, load_rules=lambda texts: [], respond=lambda f: None)
    scanner = ExportScanner(queue.Queue(), policy=policy, respond=lambda f: None)
    workers = [Worker("detection", detection.run, wake=detection.wake),
               Worker("export-scan", scanner.run, wake=scanner.wake)]
    for worker in workers:
        worker.start()
    time.sleep(0.2)
    started = time.monotonic()
    assert all(worker.stop(3.0) for worker in workers)
    assert time.monotonic() - started < 0.5  # not a poll timeout later
