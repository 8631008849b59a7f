"""Every seeded connector state is one Set-SendConnector produces: replayed through the lab's
own cmdlet and rules from a default connector (exchange-notes.md, "Real-world causes": a lab
scenario must reach its state through the cmdlets' own rules)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from remediate.lab import rules
from remediate.lab.api import LabCredential
from remediate.lab.cmdlets import SET_FIELDS, ExchangeShell
from remediate.lab.model import Connector
from remediate.lab.org import Organization
from remediate.lab.seed import seed_state
from tests.lab.org_fixtures import run

SEED = seed_state(smart_host=("127.0.0.1", 2525), closed_port=2599)
# What Set-SendConnector cannot set: identity and bookkeeping.
NOT_SETTABLE = {"name", "guid", "when_changed"}


def default_connector(seeded: Connector) -> Connector:
    """A new connector as New-SendConnector leaves it: DNS routing, no mechanism, port 25."""
    return Connector(seeded.name, seeded.guid, ["SMTP:*;1"], list(seeded.source_transport_servers))


def replay_parameters(seeded: Connector) -> list[tuple[str, Any]]:
    """Set-SendConnector parameters that turn the default connector into ``seeded``."""
    default = default_connector(seeded)
    by_field = {field: parameter for parameter, field in SET_FIELDS.items()}
    params = []
    for field in dataclasses.fields(Connector):
        wanted = getattr(seeded, field.name)
        if field.name in NOT_SETTABLE or wanted == getattr(default, field.name):
            continue
        if isinstance(wanted, LabCredential):
            wanted = LabCredential(wanted.username, wanted.password)
        params.append((by_field[field.name], wanted))
    return params


@pytest.mark.parametrize("seeded", SEED.connectors, ids=[c.name for c in SEED.connectors])
def test_seeded_connector_is_reachable_through_set_send_connector(seeded: Connector) -> None:
    state = dataclasses.replace(SEED, connectors=[default_connector(seeded)])
    org = Organization(state)
    shell = ExchangeShell(org)
    params = replay_parameters(seeded)
    # -Force answers the EdgeSync connectors' ShouldContinue (exchange-notes.md).
    run(shell, "Set-SendConnector", ("Identity", seeded.name), *params, ("Force", None))
    replayed = org.connector(seeded.name)
    assert dataclasses.replace(replayed, when_changed=seeded.when_changed) == seeded


@pytest.mark.parametrize("seeded", SEED.connectors, ids=[c.name for c in SEED.connectors])
def test_seeded_connector_is_valid_as_stored(seeded: Connector) -> None:
    """Exchange judges the connector as it would be saved: a seeded one takes a no-op change."""
    assert rules.apply_changes(seeded, {}) == seeded


def test_the_2016_scenario_needs_no_state_exchange_refuses() -> None:
    """The old seed (BasicAuthRequireTLS with no credential) is what Exchange refuses
    (AuthenticationCredentialNotSet); the seed now plays 2016 with ExchangeServer, which
    needs no credential."""
    (relay,) = [c for c in SEED.connectors if c.name == "Outbound to Relay"]
    assert relay.smart_host_auth_mechanism == "ExchangeServer" and relay.credential is None
    with pytest.raises(rules.RuleViolation) as refused:
        rules.apply_changes(relay, {"smart_host_auth_mechanism": "BasicAuthRequireTLS"})
    assert refused.value.error_id == "AuthenticationCredentialNotSet"


def test_replay_is_not_vacuous() -> None:
    """The 2016 connector's replay sends DNS routing off, the smart host, the mechanism and
    the port; the Partner replay sends a credential."""
    by_name = {c.name: c for c in SEED.connectors}
    relay = {name for name, _ in replay_parameters(by_name["Outbound to Relay"])}
    assert {"DNSRoutingEnabled", "SmartHosts", "SmartHostAuthMechanism", "Port"} <= relay
    partner = dict(replay_parameters(by_name["Outbound to Partner"]))
    assert isinstance(partner["AuthenticationCredential"], LabCredential)
