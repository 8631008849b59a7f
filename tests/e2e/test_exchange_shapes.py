"""The installed command against the lab's Exchange-shaped wire (MultiValuedProperty lists, the
credential flattened to its type name, bracketed IP smart hosts, queues per source server):
the checks of issue 11's "done when", and a connector name holding ESC and NUL."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from pypsrp.powershell import PowerShell

from remediate.lab.model import Connector
from remediate.lab.server import Lab
from tests.bulk.bulk_helpers import bulk, cli_env, row, start_labs, write_rows
from tests.e2e.conftest import PROFILE, RELAY, Cli
from tests.lab.lab_helpers import lab_pool

pytestmark = [pytest.mark.e2e, pytest.mark.keyring]

ARCHIVE = "Outbound to Archive"


def set_smart_host(lab: Lab, name: str, host: str) -> None:
    """As an admin would: Set-SendConnector over PSRP (Exchange stores an IP bracketed)."""
    with lab_pool(lab) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Set-SendConnector").add_parameter("Identity", name)
        ps.add_parameter("SmartHosts", [host]).add_parameter("Confirm", False)
        ps.invoke()
        assert not ps.had_errors and not ps.streams.error, ps.streams.error


def test_show_json_lists_smart_hosts_address_spaces_port_and_only_whether_a_credential_is_set(
    profiled: Cli, relay_lab: Lab
) -> None:
    relay = profiled.connector(RELAY)
    stored = relay_lab.organization.connector(RELAY)
    assert relay["SmartHosts"] == stored.smart_hosts and relay["SmartHosts"]
    assert relay["AddressSpaces"] == stored.address_spaces
    assert relay["SourceTransportServers"] == ["EX01", "EX02"]
    assert relay["Port"] == stored.port
    archive = profiled.connector(ARCHIVE)
    assert archive["AuthenticationCredential"] == "set"
    assert relay_lab.relay_user not in json.dumps(archive)


def test_reenter_credential_with_a_user_name_is_planned_and_sent_with_what_if(
    profiled: Cli, relay_lab: Lab
) -> None:
    """A connector holding a credential: pre-flight must not refuse re-entering it."""
    done = profiled(
        "apply", "2016", "--profile", PROFILE, "--connector", ARCHIVE,
        "--reenter-credential", "--username", relay_lab.relay_user, "--what-if",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"Set-SendConnector -Identity '{ARCHIVE}' -AuthenticationCredential $cred" in (
        done.stdout
    )
    assert f'What if: Configuring Send connector "{ARCHIVE}".' in done.stdout


def test_an_unchanged_ip_smart_host_is_nothing_to_change(profiled: Cli, relay_lab: Lab) -> None:
    set_smart_host(relay_lab, ARCHIVE, "127.0.0.1")
    shown = profiled.connector(ARCHIVE)["SmartHosts"]
    assert shown == ["[127.0.0.1]"]  # as Exchange writes an IP smart host
    for given in ("127.0.0.1", "[127.0.0.1]"):
        done = profiled(
            "apply", "2002", "--profile", PROFILE, "--connector", ARCHIVE,
            "--smart-host", given, "--yes",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"No change: '{ARCHIVE}' already has the settings asked for.\n"
    assert profiled.backups() == [] and profiled.audit_lines() == []


def test_a_bulk_rerun_on_an_ip_smart_host_reports_ok(tmp_path: Path) -> None:
    (lab,) = start_labs(tmp_path, 1)
    try:
        set_smart_host(lab, ARCHIVE, "127.0.0.1")
        spec = write_rows(
            tmp_path / "ip.yaml", [row(lab, connector=ARCHIVE, smart_hosts=["127.0.0.1"])]
        )
        done = bulk(cli_env(tmp_path), "plan", str(spec), "--password-stdin")
    finally:
        lab.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{ARCHIVE}: ok, nothing to change" in done.stdout


def test_a_connector_name_with_esc_and_nul_is_shown_safely_and_the_rest_too(
    profiled: Cli, relay_lab: Lab
) -> None:
    """Issue 13 item 9: the lab escapes control characters as PowerShell's serializer does
    (_x001B_, MS-PSRP 2.2.5.3.2); the reader decodes them and the output sanitiser prints
    them as '?'."""
    odd = Connector(
        "Evil\x1b]0;owned\x07\x00Relay",
        str(uuid.uuid4()),
        ["SMTP:evil.example;1"],
        ["EX01"],
    )
    relay_lab.organization.add_connectors([odd])
    done = profiled("show", "--profile", PROFILE)
    assert done.returncode == 0, done.stderr
    assert "Evil?]0;owned??Relay" in done.stdout
    assert "\x1b" not in done.stdout + done.stderr and "\x00" not in done.stdout
    assert RELAY in done.stdout and ARCHIVE in done.stdout
    as_json = profiled("show", "--profile", PROFILE, "--json")
    names = {c["Name"] for c in json.loads(as_json.stdout)}
    assert odd.name in names  # JSON keeps the exact name, escaped by the JSON encoder
