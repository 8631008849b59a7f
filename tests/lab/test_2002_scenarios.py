"""The lab's 2002 scenarios through its cmdlets and the real aiosmtpd smart host: a closed port
fixed by the port alone, a smart host name that does not resolve (DNS LastError, no event), a
disabled connector whose queue waits until it is enabled."""

from __future__ import annotations

from pathlib import Path

from remediate.core.last_error import Cause, parse_last_error
from remediate.lab.cmdlets import ExchangeShell
from remediate.lab.org import Organization
from remediate.lab.seed import BRANCH, LEGACY, UNRESOLVED_HOST
from remediate.lab.smarthost import SmartHost
from tests.lab.org_fixtures import (  # noqa: F401 - fixtures
    PARTNER,
    free_port,
    lab_ca_fixture,
    open_org,
    org_fixture,
    run,
    shell_fixture,
    smart_host_fixture,
)

PARTNER_QUEUE, BRANCH_QUEUE, LEGACY_QUEUE = "EX01\\5", "EX01\\7", "EX01\\8"


def queue(shell: ExchangeShell, identity: str) -> dict:
    (found,) = run(shell, "Get-Queue", (None, identity))
    return found.properties


def retry(shell: ExchangeShell, org: Organization, identity: str) -> dict:
    run(shell, "Retry-Queue", ("Identity", identity), ("Confirm", False))
    org.wait_for_deliveries()
    return queue(shell, identity)


def set_connector(shell: ExchangeShell, name: str, *params: tuple[str, object]) -> None:
    run(shell, "Set-SendConnector", ("Identity", name), *params, ("Confirm", False))


def connector(shell: ExchangeShell, name: str) -> dict:
    (found,) = run(shell, "Get-SendConnector", (None, name))
    return found.properties


def test_seeded_2002_scenarios_come_after_the_original_four(shell: ExchangeShell) -> None:
    names = [c.to_string for c in run(shell, "Get-SendConnector")]
    assert names[4:6] == [BRANCH, LEGACY]
    branch, legacy = connector(shell, BRANCH), connector(shell, LEGACY)
    assert list(branch["SmartHosts"]) == [UNRESOLVED_HOST] and branch["Enabled"] is True
    assert legacy["Enabled"] is False and legacy["DNSRoutingEnabled"] is False
    for identity in (BRANCH_QUEUE, LEGACY_QUEUE):
        seeded = queue(shell, identity)
        assert (seeded["Status"], seeded["MessageCount"]) == ("Retry", 2)


def test_closed_port_is_fixed_by_the_port_alone(
    shell: ExchangeShell, org: Organization, smart_host: SmartHost
) -> None:
    assert parse_last_error(queue(shell, PARTNER_QUEUE)["LastError"]).cause is (
        Cause.CONNECTION_REFUSED
    )
    set_connector(shell, PARTNER, ("Port", smart_host.port))
    drained = retry(shell, org, PARTNER_QUEUE)
    assert (drained["Status"], drained["MessageCount"], drained["LastError"]) == ("Ready", 0, "")
    assert len(smart_host.messages) == 2
    assert {m.user for m in smart_host.messages} == {org.relay_user}


def test_unresolved_smart_host_is_a_dns_queue_error_without_an_event(
    shell: ExchangeShell, org: Organization, smart_host: SmartHost
) -> None:
    events_before = len(org.events)
    failed = retry(shell, org, BRANCH_QUEUE)
    assert failed["Status"] == "Retry" and failed["MessageCount"] == 2
    assert "SMTPSEND.DNS.NonExistentDomain" in failed["LastError"]
    assert parse_last_error(failed["LastError"]).cause is Cause.DNS
    assert len(org.events) == events_before  # Exchange logs no 2002 for a name DNS lacks
    assert smart_host.messages == []

    set_connector(shell, BRANCH, ("SmartHosts", ["localhost"]))
    drained = retry(shell, org, BRANCH_QUEUE)
    assert (drained["Status"], drained["MessageCount"]) == ("Ready", 0)
    assert all(m.rcpt_tos[0].endswith("@branch.contoso.example") for m in smart_host.messages)
    assert len(smart_host.messages) == 2


def test_disabled_connector_keeps_its_queue_until_enabled(
    shell: ExchangeShell, org: Organization, smart_host: SmartHost
) -> None:
    events_before = len(org.events)
    waiting = retry(shell, org, LEGACY_QUEUE)
    assert waiting["Status"] == "Retry" and waiting["MessageCount"] == 2
    # inside the 2013+ wrapper (exchange-notes.md, "Queues")
    unroutable = "A matching connector cannot be found to route the external recipient"
    assert waiting["LastError"].endswith(f"{{LED={unroutable}}};{{FQDN=}};{{IP=}}]")
    assert len(org.events) == events_before and smart_host.messages == []

    set_connector(shell, LEGACY, ("Enabled", True))
    drained = retry(shell, org, LEGACY_QUEUE)
    assert (drained["Status"], drained["MessageCount"], drained["LastError"]) == ("Ready", 0, "")
    assert len(smart_host.messages) == 2


def test_new_scenarios_follow_a_moved_smart_host_after_restart(tmp_path: Path) -> None:
    """The disabled connector points at the lab smart host, so a restarted lab on another port
    moves it like the seeded ones; the unresolved name stays as the admin typed it."""
    state = tmp_path / "moved.json"
    first = open_org(state, free_port())
    first.close()
    new_port = free_port()
    second = open_org(state, new_port)
    try:
        assert second.connector(LEGACY).port == new_port
        assert second.connector(BRANCH).smart_hosts == [UNRESOLVED_HOST]
    finally:
        second.close()
