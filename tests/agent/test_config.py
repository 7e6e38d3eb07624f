from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config import (
    AgentConfig,
    ConfigError,
    HqConfig,
    KeystoreConfig,
    default_config,
    load_config,
    render_config,
)
from agent.platform.fake import FakePlatform


@pytest.fixture
def fake(tmp_path: Path) -> FakePlatform:
    return FakePlatform(tmp_path / "platform")


def write(tmp_path: Path, text: str, name: str = "agent.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_derive_paths_from_the_platform_state_dir(fake: FakePlatform) -> None:
    config = default_config(fake)
    state = fake.default_state_dir()
    assert config.source is None
    assert config.agent.state_dir == state
    assert config.log.dir == state / "logs"
    assert config.keystore.file_path == state / "device-key.pem"
    assert config.keystore.backend == "keyring"
    assert config.hq == HqConfig()
    assert config.agent.heartbeat_interval_s == 10.0
    assert config.spool.max_bytes == 64 * 1024 * 1024


def test_missing_default_file_gives_defaults(fake: FakePlatform) -> None:
    assert not fake.default_config_path().exists()
    assert load_config(None, platform=fake) == default_config(fake)


def test_existing_default_file_is_read(fake: FakePlatform) -> None:
    path = fake.default_config_path()
    path.parent.mkdir(parents=True)
    path.write_text('[agent]\noutlet_id = "SH-0042"\n', encoding="utf-8")
    config = load_config(None, platform=fake)
    assert config.agent.outlet_id == "SH-0042"
    assert config.source == path


def test_explicit_missing_file_is_an_error(tmp_path: Path, fake: FakePlatform) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml: config file does not exist"):
        load_config(missing, platform=fake)


def test_full_file_is_read_with_types_and_relative_paths_resolved(tmp_path: Path, fake: FakePlatform) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    path = write(
        folder,
        """
[hq]
url = "https://hq.example.test:8443"
ca_file = "ca.pem"
timeout_s = 5

[agent]
state_dir = "../state"
outlet_id = "GZ-7"
heartbeat_interval_s = 2.5
policy_interval_s = 600

[keystore]
backend = "file"

[spool]
max_bytes = 1048576
max_age_s = 3600
batch_size = 50

[uplink]
backoff_initial_s = 0.5
backoff_max_s = 30

[log]
level = "debug"
max_bytes = 4096
backups = 2
""",
    )
    config = load_config(path, platform=fake)
    assert config.source == path
    assert config.hq.url == "https://hq.example.test:8443"
    assert config.hq.ca_file == folder / "ca.pem"
    assert config.hq.timeout_s == 5.0 and isinstance(config.hq.timeout_s, float)
    assert config.agent.state_dir == tmp_path / "state"
    assert config.agent.policy_interval_s == 600.0
    # Paths not given follow the configured state_dir, not the platform one.
    assert config.log.dir == tmp_path / "state" / "logs"
    assert config.keystore.file_path == tmp_path / "state" / "device-key.pem"
    assert config.keystore.backend == "file"
    assert config.spool.batch_size == 50
    assert config.uplink.backoff_initial_s == 0.5
    assert config.log.level == "DEBUG"
    assert config.log.backups == 2


def test_absolute_paths_are_kept(tmp_path: Path, fake: FakePlatform) -> None:
    log_dir = tmp_path / "elsewhere" / "logs"
    path = write(tmp_path, f'[log]\ndir = "{log_dir.as_posix()}"\n')
    assert load_config(path, platform=fake).log.dir == log_dir


def test_unknown_section_names_file_and_allowed_sections(tmp_path: Path, fake: FakePlatform) -> None:
    path = write(tmp_path, '[hqq]\nurl = "https://x.test"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, platform=fake)
    message = str(caught.value)
    assert str(path) in message
    assert "[hqq]" in message and "unknown section" in message
    assert "[hq], [agent], [keystore], [spool], [uplink], [log]" in message


def test_unknown_key_names_section_key_and_allowed_keys(tmp_path: Path, fake: FakePlatform) -> None:
    path = write(tmp_path, '[hq]\nurll = "https://x.test"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, platform=fake)
    allowed = "ca_file, enroll_token_file, timeout_s, url"
    assert str(caught.value) == f"{path}: [hq] urll: unknown key; allowed keys: {allowed}"


def test_top_level_key_outside_a_section_is_refused(tmp_path: Path, fake: FakePlatform) -> None:
    path = write(tmp_path, 'url = "https://x.test"\n')
    with pytest.raises(ConfigError, match=r"\[url\]: unknown section"):
        load_config(path, platform=fake)


def test_section_that_is_not_a_table_is_refused(tmp_path: Path, fake: FakePlatform) -> None:
    path = write(tmp_path, "hq = 3\n")
    with pytest.raises(ConfigError, match=r"hq: expected a \[hq\] table, got int 3"):
        load_config(path, platform=fake)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[hq]\nurl = 5\n", "[hq] url: expected a string, got 5"),
        ('[spool]\nmax_bytes = "64MB"\n', "[spool] max_bytes: expected an integer, got '64MB'"),
        ("[spool]\nbatch_size = 2.0\n", "[spool] batch_size: expected an integer, got 2.0"),
        ("[agent]\nheartbeat_interval_s = true\n", "[agent] heartbeat_interval_s: expected a finite number, got True"),
        ("[agent]\nheartbeat_interval_s = nan\n", "[agent] heartbeat_interval_s: expected a finite number, got nan"),
        ("[hq]\nca_file = 1\n", "[hq] ca_file: expected a non-empty path string, got 1"),
        ('[log]\ndir = ""\n', "[log] dir: expected a non-empty path string, got ''"),
    ],
)
def test_wrong_type_names_what_was_expected(tmp_path: Path, fake: FakePlatform, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, platform=fake)
    assert str(caught.value) == f"{path}: {expected}"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[spool]\nmax_bytes = -1\n", "[spool] max_bytes: expected a positive number of bytes, got -1"),
        ("[spool]\nbatch_size = 0\n", "[spool] batch_size: expected a positive number of events, got 0"),
        ("[log]\nmax_bytes = -5\n", "[log] max_bytes: expected a positive number of bytes"),
        ("[log]\nbackups = 0\n", "[log] backups: expected a positive number"),
        ("[agent]\nheartbeat_interval_s = 0.5\n", "[agent] heartbeat_interval_s: expected a number of seconds >= 1"),
        ("[agent]\npolicy_interval_s = 0\n", "[agent] policy_interval_s: expected a number of seconds >= 1, got 0"),
        ('[keystore]\nbackend = "plaintext"\n', "[keystore] backend: expected one of 'keyring', 'file', 'memory'"),
        ('[log]\nlevel = "LOUD"\n', "[log] level: expected a logging level: CRITICAL, FATAL, ERROR"),
        ('[hq]\nurl = "ftp://hq.example.test"\n', "[hq] url: expected an http:// or https:// URL"),
        ('[hq]\nurl = "https://"\n', "[hq] url: expected an http:// or https:// URL"),
        ('[hq]\nurl = "https://[::1"\n', "[hq] url: expected an http:// or https:// URL"),
        ("[hq]\ntimeout_s = 0\n", "[hq] timeout_s: expected a number of seconds > 0, got 0"),
        (
            "[uplink]\nbackoff_initial_s = 10\nbackoff_max_s = 5\n",
            "[uplink] backoff_max_s: expected a number >= backoff_initial_s (10), got 5.0",
        ),
    ],
)
def test_bad_values_are_refused_with_location(tmp_path: Path, fake: FakePlatform, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, platform=fake)
    assert str(caught.value).startswith(f"{path}: ")
    assert fragment in str(caught.value)


def test_toml_syntax_error_names_file_and_line(tmp_path: Path, fake: FakePlatform) -> None:
    path = write(tmp_path, '[hq]\nurl = "https://x.test"\ntimeout_s = = 3\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, platform=fake)
    assert re.match(rf"{re.escape(str(path))}:3:\d+: invalid TOML: ", str(caught.value))


def test_non_utf8_file_is_refused_with_line(tmp_path: Path, fake: FakePlatform) -> None:
    path = tmp_path / "agent.toml"
    path.write_bytes(b'[agent]\noutlet_id = "' + "网点".encode("gbk") + b'"\n')
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}:2: config file is not UTF-8 text"):
        load_config(path, platform=fake)


def test_unreadable_path_is_a_config_error(tmp_path: Path, fake: FakePlatform) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path, platform=fake)  # a directory


def test_empty_file_gives_defaults_with_source(tmp_path: Path, fake: FakePlatform) -> None:
    path = write(tmp_path, "")
    config = load_config(path, platform=fake)
    assert config == default_config(fake)
    assert config.source == path


def test_rendered_config_reads_back_equal(tmp_path: Path, fake: FakePlatform) -> None:
    base = default_config(fake)
    config = dataclasses.replace(
        base,
        hq=HqConfig(url="https://hq.example.test/base", ca_file=tmp_path / "pins" / "ca.pem", timeout_s=2.5),
        agent=dataclasses.replace(base.agent, outlet_id='网点 "7" \\ back\tslash', heartbeat_interval_s=1e-0),
        keystore=KeystoreConfig(backend="memory", file_path=tmp_path / "k.pem"),
    )
    path = write(tmp_path, render_config(config))
    assert load_config(path, platform=fake) == config


def test_rendered_defaults_read_back_equal_even_with_another_platform(tmp_path: Path, fake: FakePlatform) -> None:
    config = default_config(fake)
    path = write(tmp_path, render_config(config))
    other = FakePlatform(tmp_path / "other-machine")
    assert load_config(path, platform=other) == config


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    outlet=st.text(st.characters(codec="utf-8"), max_size=40),
    dirname=st.text(st.characters(codec="utf-8", exclude_characters="/\\\0"), min_size=1, max_size=20),
    interval=st.floats(min_value=1.0, max_value=1e9, allow_nan=False),
    max_bytes=st.integers(min_value=1, max_value=2**62),
)
def test_render_round_trips_any_text_path_and_number(
    tmp_path: Path, fake: FakePlatform, outlet: str, dirname: str, interval: float, max_bytes: int
) -> None:
    if dirname in (".", ".."):
        dirname = "d" + dirname
    base = default_config(fake)
    config = dataclasses.replace(
        base,
        agent=dataclasses.replace(base.agent, outlet_id=outlet, policy_interval_s=interval),
        spool=dataclasses.replace(base.spool, max_bytes=max_bytes),
        log=dataclasses.replace(base.log, dir=tmp_path / dirname),
    )
    path = write(tmp_path, render_config(config), name="round.toml")
    assert load_config(path, platform=fake) == config


def test_config_source_does_not_take_part_in_equality(fake: FakePlatform) -> None:
    config = default_config(fake)
    assert dataclasses.replace(config, source=Path("/somewhere/agent.toml")) == config
    assert isinstance(config, AgentConfig)
