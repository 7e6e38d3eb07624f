"""The agent's command line as IT scripts see it: exit codes, stderr, --json."""

import json
import subprocess
import sys

AGENT = [sys.executable, "-m", "agent.cli"]


def run(*args, **kw):
    return subprocess.run([*AGENT, *args], capture_output=True, text=True, timeout=60, **kw)


def write_config(tmp_path, text):
    path = tmp_path / "agent.toml"
    path.write_text(f'[agent]\nstate_dir = "{tmp_path / "state"}"\n[keystore]\nbackend = "file"\n' + text)
    return path


def test_every_command_has_help():
    for command in ["run", "enroll", "status", "doctor", "scan", "signin", "signout", "proof"]:
        done = run(command, "--help")
        assert done.returncode == 0 and "usage" in done.stdout, command
    assert run("rules", "lint", "--help").returncode == 0


def test_an_unknown_key_names_file_section_and_key(tmp_path):
    config = write_config(tmp_path, "[spool]\nmax_byte = 5\n")
    done = run("--config", str(config), "status")
    assert done.returncode == 2
    assert str(config) in done.stderr and "max_byte" in done.stderr and "[spool]" in done.stderr


def test_a_wrong_type_says_what_was_expected(tmp_path):
    config = write_config(tmp_path, '[spool]\nbatch_size = "lots"\n')
    done = run("--config", str(config), "status")
    assert done.returncode == 2 and "batch_size" in done.stderr and "expected" in done.stderr


def test_a_missing_config_file_is_an_error(tmp_path):
    done = run("--config", str(tmp_path / "nope.toml"), "status")
    assert done.returncode == 2 and "nope.toml" in done.stderr


def test_status_of_a_fresh_install_says_not_enrolled(tmp_path):
    done = run("--config", str(write_config(tmp_path, "")), "status", "--json")
    assert done.returncode == 0
    status = json.loads(done.stdout)
    assert status["enrolled"] is False and status["running"] is False and status["spool_depth"] == 0


def test_doctor_says_how_to_enroll_and_fails(tmp_path):
    done = run("--config", str(write_config(tmp_path, "")), "doctor", "--json")
    assert done.returncode == 1
    checks = {c["check"]: c for c in map(json.loads, done.stdout.splitlines())}
    assert checks["keystore"]["ok"] and checks["state_dir"]["ok"]
    assert not checks["enrollment"]["ok"] and "terminal-guard enroll" in checks["enrollment"]["fix"]


def test_doctor_and_enroll_say_what_to_configure_without_a_keyring(tmp_path):
    # No desktop session here, so the keyring library has no usable backend: never a silent file fallback.
    config = tmp_path / "agent.toml"
    config.write_text(f'[agent]\nstate_dir = "{tmp_path / "state"}"\n')
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    done = run("--config", str(config), "enroll", "--hq", "https://127.0.0.1:1", "--token", "t", env=env)
    assert done.returncode == 2 and 'backend = "file"' in done.stderr and str(config) in done.stderr
    assert not list((tmp_path / "state").glob("*.pem"))
    doctor = run("--config", str(config), "doctor", env=env)
    assert doctor.returncode == 1 and 'backend = "file"' in doctor.stdout


def test_binding_commands_without_a_running_agent_exit_2_and_say_so(tmp_path):
    config = str(write_config(tmp_path, ""))
    for args in (["signin", "--staff", "s1"], ["signout"], ["proof", "--method", "GET", "--url", "https://w"]):
        done = run("--config", config, *args, input="a-password\n")
        assert done.returncode == 2 and "agent service is not reachable" in done.stderr, (args, done.stderr)


def test_rules_lint_names_file_and_field_of_each_error(tmp_path):
    good = tmp_path / "good.yml"
    good.write_text(
        "title: chromedriver\nid: 5b0f7c1e-3c56-4a53-9a8e-0d3c6a1f2b11\nstatus: test\nlevel: high\n"
        "logsource: {category: process_creation}\n"
        "detection: {sel: {Image|endswith: '\\\\chromedriver.exe'}, condition: sel}\n")
    bad = tmp_path / "bad.yml"
    bad.write_text("title: broken\nlogsource: {category: process_creation}\n"
                   "detection: {sel: {Image|nosuchmodifier: x}, condition: sel}\n")
    assert run("rules", "lint", str(good)).returncode == 0
    done = run("rules", "lint", "--json", str(good), str(bad))
    assert done.returncode == 1
    errors = [json.loads(line) for line in done.stdout.splitlines()][:-1]
    assert errors and all(e["file"].startswith(str(bad)) for e in errors)
    assert any("nosuchmodifier" in e["field"] + e["message"] for e in errors)


def test_configure_writes_config_token_file_and_pinned_ca_without_contacting_hq(tmp_path):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "test CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    ca = tmp_path / "ca.pem"
    ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    config = write_config(tmp_path, "[log]\nlevel = \"WARNING\"\n")
    done = run("--config", str(config), "configure", "--hq", "https://hq.example:8443", "--token", "tok-123",
               "--outlet", "o-5", "--ca", str(ca))
    assert done.returncode == 0, done.stderr
    from agent.config import load_config

    loaded = load_config(config)
    assert loaded.hq.url == "https://hq.example:8443" and loaded.agent.outlet_id == "o-5"
    assert loaded.log.level == "WARNING"  # what the file already said is kept
    assert loaded.hq.enroll_token_file.read_text() == "tok-123"
    assert oct(loaded.hq.enroll_token_file.stat().st_mode & 0o777) == "0o600"
    assert "tok-123" not in config.read_text()
    assert loaded.hq.ca_file.read_bytes() == ca.read_bytes()


def test_configure_refuses_a_bad_url_and_treats_empty_values_as_not_given(tmp_path):
    config = write_config(tmp_path, "")
    done = run("--config", str(config), "configure", "--hq", "ftp://x", "--token", "")
    assert done.returncode == 2 and "--hq" in done.stderr
    assert run("--config", str(config), "configure", "--hq", "", "--token", "", "--ca", "").returncode == 0
