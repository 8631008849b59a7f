"""`remediate undo` through the installed executable against the lab: it restores exactly the
settings apply changed; the credential stays as it is (Exchange never returns a password)."""

from __future__ import annotations

import json

import pytest

from remediate.lab.server import Lab
from tests.e2e.conftest import PROFILE, RELAY, Cli

pytestmark = [pytest.mark.e2e, pytest.mark.keyring]

CREDENTIAL = "AuthenticationCredential"


def without_credential(connector: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in connector.items() if k != CREDENTIAL}


def apply_several(cli: Cli, lab: Lab) -> None:
    """Credential, port and RequireTLS (off in the seed) changed on the relay connector."""
    done = cli(
        "apply", "2016", "--profile", PROFILE, "--connector", RELAY,
        "--mechanism", "BasicAuthRequireTLS", "--username", lab.relay_user,
        "--port", "2525", "--require-tls", "--yes", "--queue-wait", "0",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout


def test_undo_restores_the_previous_settings_exactly(profiled: Cli, relay_lab: Lab) -> None:
    original = profiled.connector(RELAY)
    apply_several(profiled, relay_lab)
    changed = profiled.connector(RELAY)
    assert changed["Port"] == 2525 and changed[CREDENTIAL] == "set"
    [backup] = profiled.backups()

    done = profiled("undo", str(backup), "--profile", PROFILE, "--yes")

    assert done.returncode == 0, done.stderr
    restored = profiled.connector(RELAY)
    assert without_credential(restored) == without_credential(original)
    # the credential cannot be restored: undo keeps the one apply entered, and says so
    assert restored[CREDENTIAL] == "set"
    assert "Restored: every setting matches the backup (the credential aside)." in done.stdout
    assert "the connector had no credential before; undo leaves the one for" in done.stdout
    # the undo is a change like any other: backed up and audited
    assert len(profiled.backups()) == 2
    undo_lines = [line for line in profiled.audit_lines() if line["backup"] != str(backup)]
    # TLS, then the mechanism, then the port: apply's steps undone in reverse order
    assert [line["result"] for line in undo_lines] == ["changed"] * 3
    assert undo_lines[2]["changes"]["Port"] == {"old": 2525, "new": original["Port"]}

    again = profiled("undo", str(backup), "--profile", PROFILE, "--yes")
    assert again.returncode == 0, again.stderr
    assert again.stdout == (
        "Nothing to undo: 'Outbound to Relay' already has the settings of the backup.\n"
    )


def test_undo_finds_the_profile_from_the_backup(profiled: Cli, relay_lab: Lab) -> None:
    original = profiled.connector(RELAY)
    apply_several(profiled, relay_lab)
    [backup] = profiled.backups()
    done = profiled("undo", str(backup), "--yes")
    assert done.returncode == 0, done.stderr
    assert without_credential(profiled.connector(RELAY)) == without_credential(original)


def test_undo_what_if_changes_nothing(profiled: Cli, relay_lab: Lab) -> None:
    apply_several(profiled, relay_lab)
    changed = profiled.connector(RELAY)
    [backup] = profiled.backups()
    done = profiled("undo", str(backup), "--profile", PROFILE, "--what-if")
    assert done.returncode == 0, done.stderr
    assert 'What if: Configuring Send connector "Outbound to Relay".' in done.stdout
    assert profiled.connector(RELAY) == changed
    assert len(profiled.backups()) == 1


def test_undo_output_writes_the_script_and_sends_nothing(profiled: Cli, relay_lab: Lab) -> None:
    apply_several(profiled, relay_lab)
    changed = profiled.connector(RELAY)
    [backup] = profiled.backups()
    script = backup.parent.parent / "undo.ps1"
    done = profiled("undo", str(backup), "--output", str(script))
    assert done.returncode == 0, done.stderr
    commands = [line for line in script.read_text().splitlines() if line.startswith("Set-")]
    port = relay_lab.smtp_address.port
    # apply's three steps undone in reverse order; the credential is never restored
    assert commands == [
        "Set-SendConnector -Identity 'Outbound to Relay' -RequireTLS $false -Confirm:$false",
        "Set-SendConnector -Identity 'Outbound to Relay' -SmartHostAuthMechanism "
        "'ExchangeServer' -Confirm:$false",
        f"Set-SendConnector -Identity 'Outbound to Relay' -Port {port} -Confirm:$false",
    ]
    saved_script = backup.with_name(backup.stem + "-undo.ps1").read_text().splitlines()
    assert [line for line in saved_script if line.startswith("Set-")] == commands
    assert profiled.connector(RELAY) == changed


def test_undo_refuses_another_endpoint(profiled: Cli, relay_lab: Lab) -> None:
    apply_several(profiled, relay_lab)
    [backup] = profiled.backups()
    done = profiled(
        "undo", str(backup), "--server", "http://127.0.0.1:9/PowerShell", "--auth", "basic",
        "--user", "admin", "--yes",
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        f"remediate: error: this backup is of 'Outbound to Relay' at {relay_lab.endpoint_url}, "
        "not http://127.0.0.1:9/PowerShell"
    )


def test_a_broken_backup_is_one_line(cli: Cli, tmp_path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"format": 1}))
    done = cli("undo", str(broken), "--yes")
    assert done.returncode == 2
    assert done.stderr == (
        f"remediate: error: {broken}: not a remediate backup (missing 'connector')\n"
    )
