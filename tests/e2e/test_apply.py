"""`remediate apply` through the installed executable against the lab over real HTTP, with
the admin and relay passwords in a real Secret Service (or piped with --password-stdin)."""

from __future__ import annotations

import dataclasses
import io
import signal
import stat
import subprocess

import pytest

from remediate.core.env import Environment
from remediate.lab.server import Lab
from remediate.ui.cli import main
from tests.e2e.conftest import EXE, PARTNER, PROFILE, RELAY, Cli

pytestmark = [pytest.mark.e2e, pytest.mark.keyring]


def fix_2016(lab: Lab, *extra: str) -> list[str]:
    return [
        "apply", "2016", "--profile", PROFILE, "--connector", RELAY,
        "--mechanism", "BasicAuthRequireTLS", "--username", lab.relay_user, *extra,
    ]  # fmt: skip


def delivered(lab: Lab) -> int:
    assert lab.smart_host is not None
    return len(lab.smart_host.messages)


def test_apply_fixes_the_seeded_2016_connector(profiled: Cli, relay_lab: Lab) -> None:
    """The seeded 2016: ExchangeServer to a smart host that does not offer it, queues on EX01
    and EX02; the fix is a shared mechanism with the credential (the event page's action)."""
    before = profiled.connector(RELAY)
    assert before["AuthenticationCredential"] == "not set"
    assert before["SourceTransportServers"] == ["EX01", "EX02"]
    assert delivered(relay_lab) == 0

    done = profiled(*fix_2016(relay_lab, "--yes"))

    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert (
        "Set-SendConnector -Identity 'Outbound to Relay' -SmartHostAuthMechanism "
        "'BasicAuthRequireTLS' -AuthenticationCredential $cred"
    ) in out
    assert "[4/9] Set-SendConnector: ok" in out
    assert "AuthenticationCredential  not set         set" in out
    assert (
        "4. Set-SendConnector -SmartHostAuthMechanism -AuthenticationCredential: ran, changed"
        in out
    )
    assert "6. Retry-Queue -Server -Filter: ran, changed" in out
    assert "7. Retry-Queue -Server -Filter: ran, changed" in out
    queue_table = out.split("Queues after Retry-Queue:")[1].splitlines()
    rows = {line.split()[0]: line.split()[1:3] for line in queue_table[2:4]}
    assert rows == {"EX01\\4": ["Ready", "0"], "EX02\\12": ["Ready", "0"]}, out
    assert "Mail flows: EX01\\4, EX02\\12 drained." in out
    assert delivered(relay_lab) == 5  # EX01's 3 messages and EX02's 2

    after = profiled.connector(RELAY)
    assert after["AuthenticationCredential"] == "set"
    changed = {"AuthenticationCredential", "SmartHostAuthMechanism"}
    assert {k: v for k, v in after.items() if k not in changed} == {
        k: v for k, v in before.items() if k not in changed
    }
    [backup] = profiled.backups()
    assert f"Backup: {backup}" in out and stat.S_IMODE(backup.stat().st_mode) == 0o600
    results = [(line["cmdlet"], line["result"]) for line in profiled.audit_lines()]
    assert results[0] == ("Set-SendConnector", "changed")
    assert results[1:3] == [("Retry-Queue", "changed")] * 2


def test_what_if_changes_nothing(profiled: Cli, relay_lab: Lab) -> None:
    before = profiled.connector(RELAY)
    done = profiled(*fix_2016(relay_lab, "--what-if"))
    assert done.returncode == 0, done.stderr
    assert "-Confirm:$false -WhatIf" in done.stdout
    assert 'What if: Configuring Send connector "Outbound to Relay".' in done.stdout
    assert "What-if run: nothing was changed." in done.stdout
    assert "no backup was taken" in done.stdout
    assert profiled.connector(RELAY) == before
    assert profiled.backups() == [] and profiled.audit_lines() == []
    assert delivered(relay_lab) == 0


def test_a_second_apply_reports_no_change(profiled: Cli, relay_lab: Lab) -> None:
    first = profiled(*fix_2016(relay_lab, "--yes"))
    assert first.returncode == 0, first.stderr
    second = profiled(*fix_2016(relay_lab, "--yes"))
    assert second.returncode == 0, second.stderr
    assert second.stdout == "No change: 'Outbound to Relay' already has the settings asked for.\n"
    assert len(profiled.backups()) == 1
    assert len(profiled.audit_lines()) == 3  # one Set-SendConnector, a Retry-Queue per server


def test_password_stdin_carries_both_passwords(cli: Cli, relay_lab: Lab) -> None:
    cli.forget_relay(relay_lab.relay_user)
    done = cli(
        "apply", "2016", "--server", relay_lab.endpoint_url, "--auth", "ntlm",
        "--user", relay_lab.admin_user, "--password-stdin", "--connector", RELAY,
        "--mechanism", "BasicAuthRequireTLS", "--username", relay_lab.relay_user, "--yes",
        stdin=f"{relay_lab.admin_password}\n{relay_lab.relay_password}\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert delivered(relay_lab) == 5
    for secret in (relay_lab.admin_password, relay_lab.relay_password):
        assert secret not in done.stdout + done.stderr


def test_a_missing_relay_password_fails_before_any_change(profiled: Cli, relay_lab: Lab) -> None:
    profiled.forget_relay(relay_lab.relay_user)
    before = profiled.connector(RELAY)
    done = profiled(*fix_2016(relay_lab, "--yes"))
    assert done.returncode == 4
    assert done.stderr.splitlines()[0] == (
        f"remediate: error: no password for relay account {relay_lab.relay_user} in the "
        f"keyring (service remediate:relay, key {relay_lab.relay_user})"
    )
    assert profiled.connector(RELAY) == before
    assert profiled.backups() == [] and profiled.audit_lines() == []


def test_stdin_without_the_relay_line_fails_before_any_change(cli: Cli, relay_lab: Lab) -> None:
    cli.forget_relay(relay_lab.relay_user)
    done = cli(
        "apply", "2016", "--server", relay_lab.endpoint_url, "--auth", "ntlm",
        "--user", relay_lab.admin_user, "--password-stdin", "--connector", RELAY,
        "--username", relay_lab.relay_user, "--mechanism", "BasicAuthRequireTLS", "--yes",
        stdin=relay_lab.admin_password + "\n",
    )  # fmt: skip
    assert done.returncode == 2
    assert "line 2 of stdin should hold the password of relay account" in done.stderr
    assert cli.backups() == [] and delivered(relay_lab) == 0


def test_unknown_connector_is_one_line(profiled: Cli, relay_lab: Lab) -> None:
    done = profiled(
        "apply", "2016", "--profile", PROFILE, "--connector", "Nope",
        "--username", relay_lab.relay_user, "--reenter-credential", "--yes",
    )  # fmt: skip
    assert done.returncode == 6
    assert done.stdout == ""
    assert done.stderr.splitlines()[0] == "remediate: error: Send connector 'Nope' was not found"
    assert len(done.stderr.splitlines()) <= 2


def test_without_a_terminal_and_without_yes_nothing_changes(profiled: Cli, relay_lab: Lab) -> None:
    before = profiled.connector(RELAY)
    done = profiled(*fix_2016(relay_lab))
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        "remediate: error: not confirmed: no terminal to ask on; add --yes to apply without asking"
    )
    assert profiled.connector(RELAY) == before and profiled.backups() == []


def test_a_refused_change_is_refused_before_anything_is_sent(profiled: Cli, relay_lab: Lab) -> None:
    before = profiled.connector(PARTNER)
    done = profiled(
        "apply", "2002", "--profile", PROFILE, "--connector", PARTNER, "--port", "70000", "--yes"
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        "remediate: error: --port: 70000 is not a port number (0-65535)"
    )
    assert profiled.connector(PARTNER) == before


def test_apply_2002_points_the_partner_connector_at_the_smart_host(
    profiled: Cli, relay_lab: Lab
) -> None:
    port = str(relay_lab.smtp_address.port)
    done = profiled(
        "apply", "2002", "--profile", PROFILE, "--connector", PARTNER, "--port", port, "--yes",
        "--queue-wait", "0",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert profiled.connector(PARTNER)["Port"] == int(port)
    assert "Winsock error code: 10061" in done.stdout  # the queue before the change
    [line] = [line for line in profiled.audit_lines() if line["cmdlet"] == "Set-SendConnector"]
    assert line["changes"]["Port"]["new"] == int(port)
    assert line["changes"]["Port"]["old"] != int(port)


def test_ctrl_c_during_the_run_stops_and_says_what_was_applied(
    profiled: Cli, relay_lab: Lab
) -> None:
    """SIGINT once step 2 has printed (the lab answers slowly, so step 3 is in flight)."""
    relay_lab.faults.faults = dataclasses.replace(relay_lab.faults.faults, latency=0.3)
    process = subprocess.Popen(
        [str(EXE), *fix_2016(relay_lab, "--yes")],
        env={**profiled.env, "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("[3/9]"):
            process.send_signal(signal.SIGINT)
            break
    _, stderr = process.communicate(timeout=60)
    relay_lab.faults.faults = dataclasses.replace(relay_lab.faults.faults, latency=0.0)
    assert process.returncode == 130, stderr
    assert stderr.startswith("remediate: error: Stopped by Ctrl-C: ")
    assert "  1. Get-SendConnector: ran (read)" in stderr
    assert "not run" in stderr
    [backup] = profiled.backups()
    results = [line["result"] for line in profiled.audit_lines()]
    # SIGINT lands between steps 3 and 4, while step 4 (credential) is in flight, or after it
    assert results[:2] in (
        ["not run", "not run"],
        ["interrupted", "not run"],
        ["changed", "not run"],
        ["changed", "interrupted"],
    )
    assert set(results[2:]) <= {"not run"}
    credential = profiled.connector(RELAY)["AuthenticationCredential"]
    if results[0] == "not run":
        assert credential == "not set"
    if results[0] == "changed":
        assert credential == "set"
    assert f"Backup: {backup}" in stderr


@pytest.mark.parametrize(("answer", "status"), [("y\n", 0), ("n\n", 2), ("", 2)])
def test_a_terminal_is_asked_before_anything_changes(
    profiled: Cli, relay_lab: Lab, keyring_env: dict[str, str], answer: str, status: int
) -> None:
    """In-process with an Environment that says "terminal" (a pty is not needed to test the
    question); the lab, the keyring and PSRP are real."""
    env = Environment(
        stdin=io.StringIO(answer),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        stdin_isatty=True,
        stdout_isatty=True,
        environ=profiled.env,
    )
    assert main(fix_2016(relay_lab), env) == status
    question = f"Apply 3 change step(s) to 'Outbound to Relay' at {PROFILE}? [y/N] "
    assert env.stderr.getvalue().startswith(question)
    credential = profiled.connector(RELAY)["AuthenticationCredential"]
    if status == 0:
        assert credential == "set" and delivered(relay_lab) == 5
    else:
        assert "remediate: error: not applied: not confirmed" in env.stderr.getvalue()
        assert credential == "not set" and profiled.backups() == []
