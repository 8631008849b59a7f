"""Queues per transport server and the configuration delay (issue 11), each test named after
its source: Microsoft's Get-Queue docs (the local server without parameters; Identity and
Server are separate parameter sets) and exchange-notes.md ("Transport behaviour that the lab
must copy": one queue per SourceTransportServer; a change reaches the transport later)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from remediate.core.errors import UsageError
from remediate.lab.api import CmdletError, LabCredential
from remediate.lab.cmdlets import ExchangeShell
from remediate.lab.org import Organization
from remediate.lab.server import Lab
from remediate.lab.smarthost import SmartHost
from tests.lab.org_fixtures import (  # noqa: F401 - fixtures
    PARTNER,
    RELAY,
    free_port,
    lab_ca_fixture,
    org_fixture,
    run,
    shell_fixture,
    smart_host_fixture,
)


def identities(shell: ExchangeShell, *params) -> set[str]:
    return {q.to_string for q in run(shell, "Get-Queue", *params)}


def test_docs_get_queue_without_server_lists_the_local_server_only(shell: ExchangeShell) -> None:
    assert identities(shell) == {"EX01\\3", "EX01\\4", "EX01\\5", "EX01\\6", "EX01\\7", "EX01\\8"}
    assert identities(shell, ("Server", "EX02")) == {"EX02\\11", "EX02\\12"}
    assert identities(shell, ("Server", "ex02.contoso.lab")) == {"EX02\\11", "EX02\\12"}
    assert identities(shell, (None, "EX02\\12")) == {"EX02\\12"}  # the identity names it


def test_docs_a_bare_queue_number_is_looked_up_on_the_local_server(shell: ExchangeShell) -> None:
    with pytest.raises(CmdletError, match="couldn't be found on EX01"):
        run(shell, "Get-Queue", ("Identity", "12"))
    on_ex02 = ExchangeShell(shell.org, server="EX02")  # a session on EX02 finds it
    assert [q.to_string for q in run(on_ex02, "Get-Queue", ("Identity", "12"))] == ["EX02\\12"]


def test_docs_identity_and_server_are_separate_parameter_sets(shell: ExchangeShell) -> None:
    with pytest.raises(CmdletError) as both:
        run(shell, "Get-Queue", ("Identity", "EX02\\12"), ("Server", "EX02"))
    assert both.value.error_id == "AmbiguousParameterSet,Get-Queue"
    with pytest.raises(CmdletError, match="'EX09' couldn't be found"):
        run(shell, "Get-Queue", ("Server", "EX09"))


def test_notes_queue_next_hop_domain_of_the_2016_connector_on_both_servers(
    shell: ExchangeShell, org: Organization
) -> None:
    guid = org.connector(RELAY).guid
    for server, identity in (("EX01", "EX01\\4"), ("EX02", "EX02\\12")):
        (found,) = [
            q for q in run(shell, "Get-Queue", ("Server", server)) if q.to_string == identity
        ]
        assert found.properties["NextHopConnector"] == guid
        assert found.properties["NextHopDomain"] == "localhost"
        assert found.properties["DeliveryType"] == "SmartHostConnectorDelivery"


def test_notes_retry_queue_without_server_retries_the_local_server_only(
    shell: ExchangeShell, org: Organization, smart_host: SmartHost
) -> None:
    run(
        shell,
        "Set-SendConnector",
        ("Identity", RELAY),
        ("SmartHostAuthMechanism", "BasicAuthRequireTLS"),
        ("AuthenticationCredential", LabCredential(org.relay_user, org.relay_password)),
    )
    run(shell, "Retry-Queue", ("Filter", "MessageCount -gt 0"))
    org.wait_for_deliveries()
    counts = {q.identity: len(q.messages) for q in org.queues()}
    assert counts["EX01\\4"] == 0 and counts["EX02\\12"] == 2  # EX02 untouched
    run(shell, "Retry-Queue", ("Filter", "MessageCount -gt 0"), ("Server", "EX02"))
    org.wait_for_deliveries()
    assert {q.identity: len(q.messages) for q in org.queues()}["EX02\\12"] == 0
    assert {m.helo for m in smart_host.messages} == {"EX01.contoso.lab", "EX02.contoso.lab"}


def test_notes_a_change_reaches_deliveries_only_after_the_config_delay(
    org: Organization, smart_host: SmartHost
) -> None:
    """Get-SendConnector shows the change at once (AD); deliveries use it after the delay.
    A long delay first (the retry surely runs inside it), then a short one that has passed."""
    org.config_delay = 600.0
    shell = ExchangeShell(org)
    run(
        shell,
        "Set-SendConnector",
        ("Identity", RELAY),
        ("SmartHostAuthMechanism", "BasicAuthRequireTLS"),
        ("AuthenticationCredential", LabCredential(org.relay_user, org.relay_password)),
    )
    (shown,) = run(shell, "Get-SendConnector", ("Identity", RELAY))
    assert shown.properties["SmartHostAuthMechanism"] == "BasicAuthRequireTLS"
    run(shell, "Retry-Queue", ("Identity", "EX01\\4"))
    org.wait_for_deliveries()
    (queue,) = [q for q in org.queues() if q.identity == "EX01\\4"]
    assert len(queue.messages) == 3 and "Exchange Server authentication" in queue.last_error
    assert smart_host.messages == []
    org.config_delay = 0.2
    time.sleep(0.3)
    run(shell, "Retry-Queue", ("Identity", "EX01\\4"))
    org.wait_for_deliveries()
    (queue,) = [q for q in org.queues() if q.identity == "EX01\\4"]
    assert (len(queue.messages), queue.last_error) == (0, "")
    assert len(smart_host.messages) == 3


def test_lab_config_delay_defaults_to_two_seconds_and_refuses_negative() -> None:
    assert Lab().config_delay == 2.0
    assert Lab(config_delay=0).config_delay == 0.0
    for bad in (-1, float("nan")):
        with pytest.raises(UsageError, match="config-delay"):
            Lab(config_delay=bad)


@pytest.mark.e2e
def test_cli_config_delay_is_a_flag_of_remediate_lab() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "remediate", "lab", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "--config-delay SECONDS" in shown.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "remediate", "lab", "--config-delay", "-3"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode != 0
    assert "--config-delay must be zero or more seconds" in refused.stderr
    assert "Traceback" not in refused.stderr
