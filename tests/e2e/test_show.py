"""`remediate show` through the installed executable against a running lab over real HTTP(S);
the admin password goes in on stdin (--password-stdin), never in argv."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from remediate.lab.server import Lab
from remediate.remote.connections import INSECURE_WARNING
from tests.lab.lab_helpers import start_lab
from tests.schema_check import checked

pytestmark = pytest.mark.e2e

EXE = str(Path(sys.executable).with_name("remediate"))
RELAY = "Outbound to Relay"
PARTNER = "Outbound to Partner"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    running = start_lab(tmp_path_factory.mktemp("show-lab"), auth="ntlm")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def tls_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    running = start_lab(tmp_path_factory.mktemp("show-tls-lab"), tls=True)
    try:
        yield running
    finally:
        running.stop()


def _show(
    lab: Lab, env: dict[str, str], *args: str, password: str | None = None, ca: bool = True
) -> subprocess.CompletedProcess[str]:
    argv = [EXE, "show", "--server", lab.endpoint_url, "--auth", str(lab.auth)]
    argv += ["--user", lab.admin_user, "--password-stdin", "--connect-timeout", "5"]
    if lab.tls and ca:
        argv += ["--ca-file", str(lab.ca_file)]
    argv += list(args)
    secret = lab.admin_password if password is None else password
    result = subprocess.run(
        argv, input=secret + "\n", capture_output=True, text=True, env=env, timeout=60
    )
    assert secret not in result.stdout and secret not in result.stderr
    assert all(secret not in arg for arg in argv)
    return result


def test_table_lists_every_connector(lab: Lab, secret_service: dict[str, str]) -> None:
    result = _show(lab, secret_service)
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split("  ")[0] == "NAME"
    for column in ("SMART HOSTS", "PORT", "AUTH", "CREDENTIAL", "DNS ROUTING", "TLS", "ENABLED"):
        assert column in header
    names = {c.name for c in lab.organization.connectors()}
    assert {row.split("  ")[0] for row in rows} == names
    relay = next(row for row in rows if row.startswith(RELAY))
    stored = lab.organization.connector(RELAY)
    assert "ExchangeServer" in relay and str(stored.port) in relay.split()  # the seeded 2016
    assert ", ".join(stored.smart_hosts) in relay


def test_json_is_exchange_property_names(lab: Lab, secret_service: dict[str, str]) -> None:
    result = _show(lab, secret_service, "--json")
    assert result.returncode == 0, result.stderr
    connectors = json.loads(result.stdout)
    by_name = {c["Name"]: c for c in connectors}
    assert set(by_name) == {c.name for c in lab.organization.connectors()}
    stored = lab.organization.connector(PARTNER)
    partner = by_name[PARTNER]
    assert partner["Port"] == stored.port
    assert partner["SmartHosts"] == list(stored.smart_hosts)
    assert partner["DNSRoutingEnabled"] is stored.dns_routing_enabled
    # exchange-notes.md: over remoting a credential is only "set" or not, never a user name
    for connector in lab.organization.connectors():
        wanted = "set" if connector.credential else "not set"
        assert by_name[connector.name]["AuthenticationCredential"] == wanted
    assert lab.relay_user not in result.stdout


def test_one_connector_with_its_queue(lab: Lab, secret_service: dict[str, str]) -> None:
    result = _show(lab, secret_service, "--connector", RELAY, "--queues")
    assert result.returncode == 0, result.stderr
    table, queues = result.stdout.split("\n\n")
    assert len(table.splitlines()) == 2 and RELAY in table
    header, *rows = queues.splitlines()
    assert header.startswith("CONNECTOR") and "CAUSE" in header and "LAST ERROR" in header
    assert rows and all(row.startswith(RELAY) for row in rows)


def test_json_queues_carry_the_cause_read_in_last_error(
    lab: Lab, secret_service: dict[str, str]
) -> None:
    """The one queue shape (schema ``queue``, as diagnose and apply print it); the seeded
    relay queues fail with 451 5.7.3 on both source servers (README's lab table)."""
    result = _show(lab, secret_service, "--json", "--queues")
    assert result.returncode == 0, result.stderr
    by_name = {c["Name"]: c for c in checked("show", result.stdout)}
    queues = by_name[RELAY]["queues"]
    assert {q["server"] for q in queues} == {"EX01", "EX02"}
    assert all(q["next_hop_connector"] == by_name[RELAY]["Guid"] for q in queues)
    assert {q["cause"] for q in queues} == {"exchange-auth"}
    assert all("Exchange Server authentication" in q["last_error"] for q in queues)
    assert by_name["Internet Mail"]["queues"] == []  # DNS routed: no smart-host queue


def test_unknown_connector_is_one_line_and_exit_6(lab: Lab, secret_service: dict[str, str]) -> None:
    result = _show(lab, secret_service, "--connector", "No Such Connector")
    assert result.returncode == 6
    assert result.stdout == ""
    first, hint = result.stderr.splitlines()
    assert first == "remediate: error: Send connector 'No Such Connector' was not found"
    assert hint.startswith("hint: ")


def test_wrong_password_is_one_line_and_exit_5(lab: Lab, secret_service: dict[str, str]) -> None:
    result = _show(lab, secret_service, password="Not-The-Passw0rd")
    assert result.returncode == 5
    first, _hint = result.stderr.splitlines()
    assert "refused the user name or password" in first and "401" in first


def test_https_with_the_ca_file(tls_lab: Lab, secret_service: dict[str, str]) -> None:
    result = _show(tls_lab, secret_service)
    assert result.returncode == 0, result.stderr
    assert RELAY in result.stdout


def test_https_without_the_ca_fails_with_the_tls_line(
    tls_lab: Lab, secret_service: dict[str, str]
) -> None:
    result = _show(tls_lab, secret_service, ca=False)
    assert result.returncode == 5
    first, hint = result.stderr.splitlines()
    assert "certificate" in first and "could not be verified" in first
    assert "--ca-file" in hint


def test_https_insecure_warns_and_works(tls_lab: Lab, secret_service: dict[str, str]) -> None:
    result = _show(tls_lab, secret_service, "--insecure", ca=False)
    assert result.returncode == 0, result.stderr
    assert RELAY in result.stdout
    assert result.stderr.splitlines() == [INSECURE_WARNING.format(url=tls_lab.endpoint_url)]
