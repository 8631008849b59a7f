"""remediate connect through the installed executable: profiles, the admin password in a
real Secret Service, and `connect test` against a running lab over HTTP."""

from __future__ import annotations

import io
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.lab_helpers import start_lab
from tests.secret_service import REMEDIATE_EXE, run_remediate

pytestmark = [pytest.mark.e2e, pytest.mark.keyring]


remediate = run_remediate


@pytest.fixture
def cli_env(secret_service: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**secret_service, "XDG_CONFIG_HOME": str(tmp_path / "config")}


def test_add_list_remove(cli_env: dict[str, str], tmp_path: Path) -> None:
    added = remediate(
        cli_env,
        "connect",
        "add",
        "ex01",
        "--server",
        "https://ex01.contoso.com/PowerShell",
        "--auth",
        "ntlm",
        "--user",
        "CONTOSO\\admin",
    )
    assert added.returncode == 0, added.stderr
    profiles = tmp_path / "config" / "remediate" / "profiles.json"
    assert stat.S_IMODE(profiles.stat().st_mode) == 0o600
    assert json.loads(profiles.read_text())["profiles"]["ex01"]["auth"] == "ntlm"
    listed = remediate(cli_env, "connect", "list")
    assert "ex01" in listed.stdout and "https://ex01.contoso.com:443/PowerShell" in listed.stdout
    removed = remediate(cli_env, "connect", "remove", "ex01")
    assert removed.returncode == 0
    again = remediate(cli_env, "connect", "remove", "ex01")
    assert again.returncode == 2
    assert again.stderr.startswith("remediate: error: no connection profile named 'ex01'")


def test_connect_test_with_the_password_from_the_keyring(cli_env, tmp_path: Path) -> None:
    lab = start_lab(tmp_path, auth="ntlm")
    try:
        added = remediate(
            cli_env,
            "connect",
            "add",
            "lab",
            "--server",
            lab.endpoint_url,
            "--auth",
            "ntlm",
            "--user",
            lab.admin_user,
            "--save-password",
            "--password-stdin",
            stdin=lab.admin_password + "\n",
        )
        assert added.returncode == 0, added.stderr
        assert "stored in the keyring (remediate:endpoint, lab|" in added.stdout
        tested = remediate(cli_env, "connect", "test", "lab")
        assert tested.returncode == 0, tested.stderr
        assert (
            f"Get-SendConnector returned {len(lab.organization.connectors())} connector(s)"
            in tested.stdout
        )
        for output in (added.stdout, added.stderr, tested.stdout, tested.stderr):
            assert lab.admin_password not in output
        assert lab.admin_password not in (tmp_path / "config/remediate/profiles.json").read_text()

        piped = remediate(
            cli_env,
            "connect",
            "test",
            "--server",
            lab.endpoint_url,
            "--auth",
            "ntlm",
            "--user",
            lab.admin_user,
            "--password-stdin",
            stdin=lab.admin_password + "\n",
        )
        assert piped.returncode == 0, piped.stderr
        wrong = remediate(
            cli_env,
            "connect",
            "test",
            "--server",
            lab.endpoint_url,
            "--auth",
            "ntlm",
            "--user",
            lab.admin_user,
            "--password-stdin",
            stdin="not-the-password\n",
        )
        assert wrong.returncode == 5
        assert len(wrong.stderr.strip().splitlines()) <= 2
        assert "401" in wrong.stderr
    finally:
        lab.stop()


def test_batch_run_without_a_stored_password_fails_clearly(cli_env) -> None:
    remediate(
        cli_env,
        "connect",
        "add",
        "nopw",
        "--server",
        "http://127.0.0.1:9/PowerShell",
        "--auth",
        "ntlm",
        "--user",
        "admin",
    )
    done = remediate(cli_env, "connect", "test", "nopw")
    assert done.returncode == 4
    assert "no password for admin at nopw in the keyring" in done.stderr


def test_relay_password_is_stored_from_stdin_never_argv(cli_env) -> None:
    stored = remediate(
        cli_env,
        "connect",
        "relay",
        "relay@contoso.lab",
        "--password-stdin",
        stdin="R3lay-canary-771\n",
    )
    assert stored.returncode == 0, stored.stderr
    read = subprocess.run(
        [
            sys.executable,
            "-c",
            "import keyring; print(keyring.get_password('remediate:relay', 'relay@contoso.lab'))",
        ],
        env=cli_env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert read.stdout.strip() == "R3lay-canary-771"
    empty = remediate(
        cli_env, "connect", "relay", "relay@contoso.lab", "--password-stdin", stdin="\n"
    )
    assert empty.returncode == 2 and "password is empty" in empty.stderr


def test_interactive_run_prompts_without_echo_and_offers_to_save(cli_env, tmp_path: Path) -> None:
    """A real pseudo-terminal (pexpect): the password typed is not echoed, and saved on 'y'."""
    import pexpect

    lab = start_lab(tmp_path, auth="ntlm")
    try:
        argv = ["connect", "test", "--server", lab.endpoint_url, "--auth", "ntlm"]
        argv += ["--user", lab.admin_user]
        child = pexpect.spawn(str(REMEDIATE_EXE), argv, env=cli_env, encoding="utf-8", timeout=30)
        child.logfile_read = transcript = io.StringIO()
        child.expect(f"Password for {lab.admin_user} at ")
        child.sendline(lab.admin_password)
        child.expect(r"Save it in the keyring \(remediate:endpoint, ")
        child.sendline("y")
        child.expect("connector\\(s\\)")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0, transcript.getvalue()
        assert lab.admin_password not in transcript.getvalue()
        assert "saved in the keyring" in transcript.getvalue()
        again = remediate(
            cli_env,
            "connect",
            "test",
            "--server",
            lab.endpoint_url,
            "--auth",
            "ntlm",
            "--user",
            lab.admin_user,
        )
        assert again.returncode == 0, again.stderr
        assert (
            f"Get-SendConnector returned {len(lab.organization.connectors())} connector(s)"
            in again.stdout
        )
    finally:
        lab.stop()


def _keyring_value(env: dict[str, str], service: str, key: str) -> str:
    code = f"import keyring; print(keyring.get_password({service!r}, {key!r}))"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_remove_also_deletes_the_stored_password(cli_env) -> None:
    server = ["--server", "http://127.0.0.1:9/PowerShell", "--auth", "basic", "--user", "adm"]
    added = remediate(
        cli_env,
        "connect",
        "add",
        "gone",
        *server,
        "--save-password",
        "--password-stdin",
        stdin="Canary-pw-314\n",
    )
    assert added.returncode == 0, added.stderr
    assert _keyring_value(cli_env, "remediate:endpoint", "gone|adm") == "Canary-pw-314"
    removed = remediate(cli_env, "connect", "remove", "gone")
    assert removed.stdout.strip() == "removed profile gone and its stored password"
    assert _keyring_value(cli_env, "remediate:endpoint", "gone|adm") == "None"


def test_bad_profile_name_and_missing_user_are_usage_errors(cli_env) -> None:
    bad = remediate(cli_env, "connect", "add", "a|b", "--server", "ex01", "--user", "adm")
    assert bad.returncode == 2 and "no '|'" in bad.stderr
    no_user = remediate(cli_env, "connect", "add", "ex01", "--server", "ex01", "--auth", "ntlm")
    assert no_user.returncode == 2 and "give --user" in no_user.stderr
    # Kerberos needs no user: the kinit ticket's own
    ticket = remediate(cli_env, "connect", "add", "ex02", "--server", "ex02", "--auth", "kerberos")
    assert ticket.returncode == 0, ticket.stderr
    assert "(kerberos, ticket cache's user)" in ticket.stdout
    nothing = remediate(cli_env, "connect", "test")
    assert nothing.returncode == 2 and "give a profile NAME or --server URL" in nothing.stderr


def test_interactive_relay_password_is_asked_twice(cli_env) -> None:
    import pexpect

    child = pexpect.spawn(
        str(REMEDIATE_EXE),
        ["connect", "relay", "relay@contoso.lab"],
        env=cli_env,
        encoding="utf-8",
        timeout=30,
    )
    child.logfile_read = transcript = io.StringIO()
    child.expect("Password for relay account relay@contoso.lab: ")
    child.sendline("Relay-one-1")
    child.expect("Again, to confirm: ")
    child.sendline("Relay-two-2")
    child.expect("the two passwords differ")
    child.expect("Password for relay account relay@contoso.lab: ")
    child.sendline("Relay-two-2")
    child.expect("Again, to confirm: ")
    child.sendline("Relay-two-2")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, transcript.getvalue()
    assert "Relay-" not in transcript.getvalue()
    assert _keyring_value(cli_env, "remediate:relay", "relay@contoso.lab") == "Relay-two-2"


def test_connect_password_stores_and_deletes_the_admin_password(cli_env) -> None:
    server = ["--server", "http://127.0.0.1:9/PowerShell", "--auth", "basic", "--user", "adm"]
    assert remediate(cli_env, "connect", "add", "pw", *server).returncode == 0
    stored = remediate(cli_env, "connect", "password", "pw", "--password-stdin", stdin="Pw-1\n")
    assert stored.returncode == 0, stored.stderr
    assert _keyring_value(cli_env, "remediate:endpoint", "pw|adm") == "Pw-1"
    deleted = remediate(cli_env, "connect", "password", "pw", "--delete")
    assert deleted.stdout.strip() == "deleted"
    assert _keyring_value(cli_env, "remediate:endpoint", "pw|adm") == "None"
    removed = remediate(cli_env, "connect", "remove", "pw")
    assert removed.stdout.strip() == "removed profile pw"


def test_adding_an_existing_profile_says_it_replaces_it(cli_env: dict[str, str]) -> None:
    first = ("connect", "add", "ex01", "--server", "http://ex01/PowerShell", "--auth", "basic")
    stored = remediate(
        cli_env, *first, "--user", "old-admin", "--save-password", "--password-stdin",
        stdin="0ld-pw\n",
    )  # fmt: skip
    assert stored.returncode == 0, stored.stderr
    again = remediate(cli_env, *first, "--user", "new-admin")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("replaced profile ex01: http://ex01:80/PowerShell")
    assert "it was: http://ex01:80/PowerShell (basic, old-admin)" in again.stdout
    assert "removed the password stored for old-admin" in again.stdout
    read = subprocess.run(
        [sys.executable, "-c",
         "import keyring; print(keyring.get_password('remediate:endpoint', 'ex01|old-admin'))"],
        env=cli_env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert read.stdout.strip() == "None"
