"""Secrets against a real Secret Service (gnome-keyring on a private D-Bus), and the refusals."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys

import pytest

from remediate.core.env import Environment
from remediate.core.errors import PreflightError, SecretStoreError, UsageError
from remediate.core.plan import RELAY_SERVICE
from remediate.core.planner import relay_credential
from remediate.remote import secrets
from remediate.remote.connections import AuthMethod, Connection
from tests.secret_service import stop_bus

pytestmark = pytest.mark.keyring

CONN = Connection(server="ex01", port=80, auth=AuthMethod.BASIC, username="admin", profile="ex01")


def batch_env(environ: dict[str, str], stdin: str = "") -> Environment:
    return Environment(
        stdin=io.StringIO(stdin),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        stdin_isatty=False,
        stdout_isatty=False,
        environ=environ,
    )


def test_set_get_delete_in_the_secret_service(keyring_env: dict[str, str]) -> None:
    import keyring

    assert type(secrets.check_backend(keyring_env)).__module__ == "keyring.backends.SecretService"
    secrets.set_secret(RELAY_SERVICE, "relay@contoso.com", "Pa55-wörd'’", keyring_env)
    assert secrets.get_secret(RELAY_SERVICE, "relay@contoso.com", keyring_env) == (
        "Pa55-wörd'’"
    )
    # stored in the real service: another process sees it
    seen = subprocess.run(
        [
            sys.executable,
            "-c",
            "import keyring; print(keyring.get_password('remediate:relay', 'relay@contoso.com'))",
        ],
        env=keyring_env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert seen.stdout.strip() == "Pa55-wörd'’"
    assert secrets.delete_secret(RELAY_SERVICE, "relay@contoso.com", keyring_env)
    assert keyring.get_password(RELAY_SERVICE, "relay@contoso.com") is None
    assert not secrets.delete_secret(RELAY_SERVICE, "relay@contoso.com", keyring_env)


def test_batch_runs_take_passwords_from_the_keyring(keyring_env: dict[str, str]) -> None:
    secrets.set_secret(secrets.ENDPOINT_SERVICE, CONN.secret_key, "admin-pw", keyring_env)
    secrets.set_secret(RELAY_SERVICE, "relay@contoso.com", "relay-pw", keyring_env)
    env = batch_env(keyring_env)
    assert secrets.endpoint_password(CONN, env) == "admin-pw"
    assert secrets.relay_password(relay_credential("relay@contoso.com"), env) == "relay-pw"


def test_batch_run_without_a_secret_says_how_to_give_it(keyring_env: dict[str, str]) -> None:
    with pytest.raises(SecretStoreError) as missing:
        secrets.relay_password(relay_credential("nobody@contoso.com"), batch_env(keyring_env))
    assert "remediate:relay" in missing.value.message
    assert "--password-stdin" in (missing.value.hint or "")


def test_password_stdin_lines(tmp_path) -> None:
    env = batch_env({"HOME": str(tmp_path)}, "admin-pw\nrelay-pw\n")
    assert secrets.endpoint_password(CONN, env, password_stdin=True) == "admin-pw"
    ref = relay_credential("relay@contoso.com")
    assert secrets.relay_password(ref, env, password_stdin=True) == "relay-pw"
    with pytest.raises(UsageError, match="line 2"):
        secrets.relay_password(ref, batch_env({}, "only-admin\n"), password_stdin=True)
    with pytest.raises(PreflightError, match="password is empty"):
        secrets.relay_password(ref, batch_env({}, "admin\n\n"), password_stdin=True)


def test_stdin_line_2_answers_only_for_a_relay_password_not_in_the_keyring(
    keyring_env: dict[str, str],
) -> None:
    secrets.set_secret(RELAY_SERVICE, "stored@contoso.com", "from-keyring", keyring_env)
    env = batch_env(keyring_env, "admin-pw\nfrom-stdin\n")
    assert secrets.endpoint_password(CONN, env, password_stdin=True) == "admin-pw"
    stored, piped = relay_credential("stored@contoso.com"), relay_credential("new@contoso.com")
    assert secrets.relay_password(stored, env, password_stdin=True) == "from-keyring"
    assert secrets.relay_password(piped, env, password_stdin=True) == "from-stdin"


def _in_subprocess(code: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


CHECK = (
    "from remediate.remote import secrets\n"
    "from remediate.core import errors\n"
    "try:\n    secrets.check_backend()\nexcept errors.SecretStoreError as e:\n"
    "    print('REFUSED', e.message, '|', e.hint)\nelse:\n    print('OK')\n"
)


def test_no_backend_says_what_to_install(tmp_path) -> None:
    environ = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    done = _in_subprocess(CHECK, environ)
    assert done.stdout.startswith("REFUSED no usable OS keyring"), done.stderr
    assert "apt-get install gnome-keyring" in done.stdout


BARE_BUS = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={dir}</listen>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def test_a_bus_without_a_secret_service_says_what_to_install(tmp_path) -> None:
    """A real D-Bus session bus that cannot start gnome-keyring (no service activation), as
    on a machine where it is not installed."""
    config = tmp_path / "bus.conf"
    config.write_text(BARE_BUS.format(dir=tmp_path))
    bus = subprocess.Popen(
        ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert bus.stdout is not None
        environ = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "DBUS_SESSION_BUS_ADDRESS": bus.stdout.readline().strip(),
        }
        code = (
            "from remediate.remote import secrets\n"
    "from remediate.core import errors\n"
            "try:\n    secrets.set_secret('remediate:relay', 'r', 'pw')\n"
            "except errors.SecretStoreError as e:\n    print('REFUSED', e.message, '|', e.hint)\n"
        )
        done = _in_subprocess(code, environ)
        assert "REFUSED no usable OS keyring" in done.stdout, done.stderr
        assert "apt-get install gnome-keyring" in done.stdout
    finally:
        stop_bus(bus)


def test_a_locked_keyring_says_how_to_unlock_it(tmp_path) -> None:
    """gnome-keyring-daemon started without --unlock on a fresh HOME has no open login
    collection; with no prompter (no desktop) it can only refuse."""
    home = tmp_path / "home"
    (home / "run").mkdir(parents=True, mode=0o700)
    bus = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    daemon_pids: list[int] = []
    try:
        assert bus.stdout is not None
        environ = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "XDG_RUNTIME_DIR": str(home / "run"),
            "DBUS_SESSION_BUS_ADDRESS": bus.stdout.readline().strip(),
        }
        started = subprocess.run(
            ["gnome-keyring-daemon", "--components=secrets", "--daemonize"],
            stdin=subprocess.DEVNULL,
            env=environ,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        daemon_pids = [
            int(line.split("=", 1)[1])
            for line in started.stdout.splitlines()
            if line.startswith("GNOME_KEYRING_PID=")
        ]
        code = (
            "from remediate.remote import secrets\n"
    "from remediate.core import errors\n"
            "try:\n    secrets.set_secret('remediate:relay', 'r', 'pw')\n"
            "except errors.SecretStoreError as e:\n    print('REFUSED', e.message, '|', e.hint)\n"
        )
        done = _in_subprocess(code, environ)
        assert "REFUSED the keyring is locked" in done.stdout, done.stderr
        assert "gnome-keyring-daemon --unlock" in done.stdout
    finally:
        for pid in daemon_pids:
            os.kill(pid, signal.SIGTERM)
        stop_bus(bus)


def test_a_plaintext_file_backend_is_refused_unless_opted_in(tmp_path) -> None:
    """keyrings.alt is not a dependency; a backend class living in a module of that name
    (written here) stands in for its plaintext file backend, which is what the check keys on."""
    fake = tmp_path / "keyrings" / "alt"
    fake.mkdir(parents=True)
    (tmp_path / "keyrings" / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "file.py").write_text(
        "from keyring.backend import KeyringBackend\n"
        "class PlaintextKeyring(KeyringBackend):\n"
        "    priority = 1\n"
        "    def get_password(self, s, u): return None\n"
        "    def set_password(self, s, u, p): pass\n"
        "    def delete_password(self, s, u): pass\n"
    )
    environ = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(tmp_path),
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
    }
    refused = _in_subprocess(CHECK, environ)
    assert "REFUSED the keyring backend keyrings.alt.file.PlaintextKeyring" in refused.stdout
    assert "REMEDIATE_ALLOW_PLAINTEXT_KEYRING=1" in refused.stdout
    allowed = _in_subprocess(CHECK, {**environ, "REMEDIATE_ALLOW_PLAINTEXT_KEYRING": "1"})
    assert allowed.stdout.strip() == "OK", allowed.stderr
