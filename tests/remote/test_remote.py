"""Session against an in-process lab over real HTTP (WSMan + PSRP)."""

from __future__ import annotations

import pytest

from remediate.core.errors import RemoteCommandError, SecretStoreError, UsageError
from remediate.core.exchange import CredentialState
from remediate.core.plan import SWITCH, CredentialRef, Parameter, Step, StepKind
from remediate.lab.server import Lab
from remediate.remote.session import Session, wire_value
from tests.remote_helpers import (  # noqa: F401 - fixtures
    CountingEndpoint,
    counting_endpoint_fixture,
    lab_connection,
    lab_fixture,
)

RELAY = "Outbound to Relay"
PARTNER = "Outbound to Partner"


def _step(cmdlet: str, *params: tuple[str, object], kind: StepKind = StepKind.CHANGE) -> Step:
    return Step(
        cmdlet,
        tuple(Parameter(n, v) for n, v in params),  # type: ignore[arg-type]
        kind,
        reason="test",
        template="set_send_connector",
    )


def _session(lab: Lab) -> Session:
    return Session(lab_connection(lab), lab.admin_password)


def test_one_pool_for_every_step(lab: Lab) -> None:
    with _session(lab) as session:
        for _ in range(3):
            assert session.get_connectors()
        port = session.run(_step("Set-SendConnector", ("Identity", PARTNER), ("Port", 2525)))
        assert lab._endpoint is not None and lab._endpoint.shell_count == 1
    assert port.ok and port.changed
    assert lab.organization.connector(PARTNER).port == 2525
    assert lab._endpoint.shell_count == 0  # closed with the session


def test_pool_is_created_once_and_warnings_are_collected(
    lab: Lab, counting_endpoint: CountingEndpoint
) -> None:
    nothing = _step("Set-SendConnector", ("Identity", PARTNER))
    with Session(counting_endpoint.connection(), lab.admin_password) as session:
        first = session.run(nothing)
        session.get_connectors()
        second = session.run(nothing)
    assert counting_endpoint.shells_created == 1
    for result in (first, second):
        assert result.ok and result.errors == []
        assert result.warnings == [
            "The command completed successfully but no settings have been modified."
        ]


def test_get_connectors_builds_send_connectors(lab: Lab) -> None:
    with _session(lab) as session:
        everything = session.get_connectors()
        (relay,) = session.get_connectors(RELAY)
    assert {RELAY, PARTNER} <= {c.name for c in everything}
    assert relay.name == RELAY
    assert relay.smart_host_auth_mechanism == "ExchangeServer"  # the seeded 2016
    assert relay.source_transport_servers == ("EX01", "EX02")
    assert relay.credential is CredentialState.NOT_SET
    assert relay.guid and relay.smart_hosts


def test_unknown_connector_is_one_clear_line(lab: Lab) -> None:
    with _session(lab) as session, pytest.raises(RemoteCommandError) as caught:
        session.get_connectors("No Such Connector")
    assert str(caught.value) == "Send connector 'No Such Connector' was not found"
    assert caught.value.hint and "remediate show" in caught.value.hint


def test_credential_comes_from_the_callback_only_when_sent(lab: Lab) -> None:
    asked: list[CredentialRef] = []

    def credential(ref: CredentialRef) -> str:
        asked.append(ref)
        return lab.relay_password

    ref = CredentialRef(lab.relay_user, "remediate:relay", lab.relay_user)
    step = _step("Set-SendConnector", ("Identity", RELAY), ("AuthenticationCredential", ref))
    with _session(lab) as session:
        assert asked == []
        result = session.run(step, credential)
        (after,) = session.get_connectors(RELAY)
    assert result.ok and result.errors == []
    assert asked == [ref]
    assert after.credential is CredentialState.SET
    stored = lab.organization.connector(RELAY).credential
    assert (stored.username, stored.password) == (lab.relay_user, lab.relay_password)
    assert lab.relay_password not in repr(result)


def test_credential_step_without_callback_is_refused_before_sending(lab: Lab) -> None:
    ref = CredentialRef("relay@contoso.lab", "remediate:relay", "relay@contoso.lab")
    with _session(lab) as session, pytest.raises(UsageError):
        session.run(
            _step("Set-SendConnector", ("Identity", RELAY), ("AuthenticationCredential", ref))
        )
    assert lab.organization.connector(RELAY).credential is None


def test_what_if_lines_are_collected_and_nothing_changes(lab: Lab) -> None:
    before = lab.organization.connector(PARTNER).port
    step = _step("Set-SendConnector", ("Identity", PARTNER), ("Port", 2525), ("WhatIf", SWITCH))
    with _session(lab) as session:
        result = session.run(step)
    assert result.ok and not result.changed
    assert len(result.what_if) == 1
    assert result.what_if[0].startswith("What if: ") and PARTNER in result.what_if[0]
    assert lab.organization.connector(PARTNER).port == before


def test_error_records_are_returned_not_raised(lab: Lab) -> None:
    step = _step("Set-SendConnector", ("Identity", "Internet Mail"), ("SmartHosts", ("relay.lab",)))
    with _session(lab) as session:
        result = session.run(step)
        still_usable = session.get_connectors("Internet Mail")
    assert not result.ok and not result.changed
    (error,) = result.errors
    # an Exchange-style id: hex after the [Server=...] prefixes (exchange-notes.md)
    assert "[FailureCategory=Cmdlet-DataValidationException]" in error.fully_qualified_error_id
    assert all(c in "0123456789ABCDEF" for c in error.error_id)
    assert error.target == "Internet Mail"
    assert error.exception_type and error.exception_type.endswith("DataValidationException")
    assert "DNSRoutingEnabled" in error.message
    assert still_usable[0].smart_hosts == ()


def test_read_step_output_is_plain_dicts(lab: Lab) -> None:
    with _session(lab) as session:
        result = session.run(_step("Get-SendConnector", ("Identity", PARTNER), kind=StepKind.READ))
    assert result.ok and not result.changed
    (record,) = result.output
    assert isinstance(record, dict) and record["Name"] == PARTNER


def test_queues_and_retry(lab: Lab) -> None:
    with _session(lab) as session:
        (relay,) = session.get_connectors(RELAY)
        queues = session.get_queues(relay)
        assert queues and all(q.next_hop_connector == relay.guid for q in queues)
        # one queue per source server, each read with -Server (exchange-notes.md)
        assert {q.server for q in queues} == {"EX01", "EX02"}
        for queue in queues:
            assert queue.message_count > 0 and queue.identity
            session.retry_queue(queue.identity)
        with pytest.raises(RemoteCommandError) as caught:
            session.retry_queue("EX01\\999")
    assert "EX01\\999" in str(caught.value) and "not found" in str(caught.value)


def test_values_go_out_as_pypsrp_wants_them() -> None:
    from remediate.core.exchange import AuthMechanism

    assert wire_value(SWITCH) is True
    assert wire_value(("a", "b")) == ["a", "b"]
    assert type(wire_value(AuthMechanism.BASIC_AUTH)) is str
    assert wire_value(AuthMechanism.BASIC_AUTH) == "BasicAuth"
    assert wire_value(None) is None and wire_value(False) is False and wire_value(25) == 25


def test_a_failing_credential_callback_propagates_and_nothing_changes(lab: Lab) -> None:
    def locked(ref: CredentialRef) -> str:
        raise SecretStoreError("the keyring is locked")

    ref = CredentialRef(lab.relay_user, "remediate:relay", lab.relay_user)
    step = _step("Set-SendConnector", ("Identity", RELAY), ("AuthenticationCredential", ref))
    with _session(lab) as session:
        with pytest.raises(SecretStoreError, match="locked"):
            session.run(step, locked)
        assert session.get_connectors(RELAY)[0].credential is CredentialState.NOT_SET


def test_open_session_takes_the_admin_password_from_stdin(lab: Lab) -> None:
    import io

    from remediate.core.env import Environment
    from remediate.remote.session import open_session

    env = Environment(stdin=io.StringIO(lab.admin_password + "\n"), stdin_isatty=False)
    with open_session(lab_connection(lab), env, password_stdin=True) as session:
        assert session.is_open
        assert session.get_connectors(PARTNER)[0].name == PARTNER
        assert lab.admin_password not in repr(session)
    assert not session.is_open


def test_a_source_server_whose_queues_cannot_be_read_is_a_warning_not_empty(lab: Lab) -> None:
    """One transport server down or unknown: its queues stay unknown, the others are read."""
    warnings: list[str] = []
    with Session(lab_connection(lab), lab.admin_password, warnings.append) as session:
        (relay,) = session.get_connectors(RELAY)
        odd = relay.replace(source_transport_servers=("EX01", "EX09"))
        queues = session.get_queues(odd)
    assert {q.server for q in queues} == {"EX01"}
    (warning,) = [w for w in warnings if "queues" in w]  # the other: Basic over plain http
    assert warning.startswith("remediate: WARNING: the queues on EX09 could not be read: ")
