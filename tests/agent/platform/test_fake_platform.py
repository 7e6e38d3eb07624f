from __future__ import annotations

import threading
from pathlib import Path

from agent.platform import Platform, UserSession
from agent.platform.fake import FakePlatform


def test_fake_paths_live_under_its_root(tmp_path: Path) -> None:
    fake = FakePlatform(tmp_path)
    assert fake.default_state_dir() == tmp_path / "state"
    assert fake.default_config_path() == tmp_path / "etc" / "agent.toml"
    assert fake.name == "fake"


def test_sessions_and_idle_are_whatever_the_test_sets(tmp_path: Path) -> None:
    fake = FakePlatform(tmp_path)
    assert fake.user_sessions() == [] and fake.idle_seconds() is None
    rdp = UserSession(user="clerk01", terminal="RDP-Tcp#2", host="HOME-PC", started=1.0, remote=True)
    fake.sessions.append(rdp)
    fake.idle = 42.0
    assert fake.user_sessions() == [rdp]
    assert fake.idle_seconds() == 42.0


def test_run_service_hands_main_the_stop_event(tmp_path: Path) -> None:
    fake: Platform = FakePlatform(tmp_path)
    assert isinstance(fake, FakePlatform)
    threading.Timer(0.05, fake.stop.set).start()
    assert fake.run_service(lambda stop: 0 if stop.wait(10) else 1) == 0
    assert fake.runs == 1
