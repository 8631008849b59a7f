"""ExchangeShell driven directly (no HTTP): cmdlets, PowerShell-like binding and errors,
Exchange-shaped objects, -WhatIf/-Confirm."""

from __future__ import annotations

import pytest

from remediate.lab.api import CmdletError, LabCredential
from remediate.lab.cmdlets import ERROR_HEX_IDS, ExchangeShell
from remediate.lab.org import Organization
from tests.lab.org_fixtures import (  # noqa: F401 - fixtures
    ARCHIVE,
    INTERNET,
    PARTNER,
    RELAY,
    RecordingHost,
    org_fixture,
    run,
    shell_fixture,
)


def props(shell: ExchangeShell, name: str) -> dict:
    (connector,) = run(shell, "Get-SendConnector", ("Identity", name))
    return connector.properties


def error_of(shell: ExchangeShell, name: str, *params) -> CmdletError:
    with pytest.raises(CmdletError) as caught:
        run(shell, name, *params)
    return caught.value


# --- Get-SendConnector ------------------------------------------------------------------------


def test_get_send_connector_returns_exchange_shaped_objects(shell: ExchangeShell) -> None:
    connectors = run(shell, "Get-SendConnector")
    assert [c.to_string for c in connectors] == [
        INTERNET,
        RELAY,
        PARTNER,
        ARCHIVE,
        "Outbound to Branch",
        "Outbound to Legacy",
        "EdgeSync - Default-First-Site-Name to Internet",
    ]
    relay = connectors[1]
    assert relay.type_names[0] == (
        "Microsoft.Exchange.Data.Directory.SystemConfiguration.SmtpSendConnectorConfig"
    )
    assert "Microsoft.Exchange.Data.Directory.ADObject" in relay.type_names
    assert relay.properties["Name"] == relay.properties["Identity"] == RELAY
    assert relay.properties["SmartHostAuthMechanism"] == "ExchangeServer"
    assert relay.properties["DNSRoutingEnabled"] is False
    assert relay.properties["AuthenticationCredential"] is None


@pytest.mark.parametrize("how", ["name", "guid", "braced guid", "server", "lower", "wildcard"])
def test_get_send_connector_by_every_identity_form(
    shell: ExchangeShell, org: Organization, how: str
) -> None:
    guid = org.connector(PARTNER).guid
    identity = {
        "name": PARTNER,
        "guid": guid,
        "braced guid": "{" + guid.upper() + "}",
        "server": f"EX01\\{PARTNER}",
        "lower": PARTNER.lower(),
        "wildcard": "*partner",
    }[how]
    (found,) = run(shell, "Get-SendConnector", (None, identity))
    assert found.properties["Guid"] == guid


def test_unknown_connector_is_management_object_not_found_with_exchanges_hex_id(
    shell: ExchangeShell,
) -> None:
    """exchange-notes.md "What comes back": ``[Server=EX01,...] [FailureCategory=Cmdlet-
    ManagementObjectNotFoundException] 4B953CE,Microsoft.Exchange...GetSendConnector``."""
    error = error_of(shell, "Get-SendConnector", ("Identity", "Nope"))
    assert error.message == (
        "The operation couldn't be performed because object 'Nope' couldn't be found on "
        "'DC1.contoso.lab'."
    )
    assert error.exception_type.endswith("ManagementObjectNotFoundException")
    assert error.error_id.startswith("[Server=EX01,RequestId=")
    assert error.error_id.endswith(
        "[FailureCategory=Cmdlet-ManagementObjectNotFoundException] 4B953CE,"
        "Microsoft.Exchange.Management.SystemConfigurationTasks.GetSendConnector"
    )
    assert "ManagementObjectNotFound," not in error.error_id  # no symbolic id on Exchange
    assert run(shell, "Get-SendConnector", ("Identity", "Nope"), ("ea", "SilentlyContinue")) == []


def test_unknown_cmdlet_is_command_not_found(shell: ExchangeShell) -> None:
    error = error_of(shell, "Get-Mailbox")
    assert error.message.startswith(
        "The term 'Get-Mailbox' is not recognized as the name of a cmdlet, function, script "
        "file, or operable program."
    )
    assert error.exception_type == "System.Management.Automation.CommandNotFoundException"
    assert run(shell, "get-sendconnector", ("identity", RELAY))[0].to_string == RELAY


# --- binding ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "error_id", "message"),
    [
        (
            [("Port", "abc")],
            "CannotConvertArgumentNoMessage",
            'Cannot bind parameter \'Port\'. Cannot convert value "abc" to type "System.Int32". '
            'Error: "Input string was not in a correct format."',
        ),
        (
            [("Port", 70000)],
            "ParameterArgumentValidationError",
            "The 70000 argument is greater than the maximum allowed range of 65535.",
        ),
        ([("Colour", "red")], "NamedParameterNotFound", "matches parameter name 'Colour'"),
        (
            [("S", "x")],
            "AmbiguousParameter",
            "include: -SmartHostAuthMechanism -SmartHosts -SourceTransportServers.",
        ),
        ([("Port", 25), ("port", 26)], "ParameterAlreadyBound", "specified more than once"),
        ([(None, "extra")], "PositionalParameterNotFound", "accepts argument 'extra'"),
        ([("RequireTLS", "yes")], "ParameterArgumentTransformationError", "System.Boolean"),
        ([("SmartHostAuthMechanism", "Kerberos")], "CannotConvertArgumentNoMessage", "BasicAuth"),
        ([("SmartHosts", ["bad host!"])], "CannotConvertArgumentNoMessage", "SmartHost"),
        ([("AddressSpaces", "SMTP:*;1000")], "CannotConvertArgumentNoMessage", "AddressSpace"),
        ([("AuthenticationCredential", "relay")], "ParameterArgumentTransformationError", ""),
        ([("Port", None)], "ParameterArgumentValidationError", "null or empty"),
    ],
)
def test_binding_errors_are_powershells(
    shell: ExchangeShell, org: Organization, params, error_id: str, message: str
) -> None:
    before = org.connector(RELAY)
    error = error_of(shell, "Set-SendConnector", (None, RELAY), *params)
    assert error.error_id == f"{error_id},Set-SendConnector"
    assert "ParameterBinding" in error.exception_type
    assert message in error.message
    assert org.connector(RELAY) == before


def test_names_bind_by_unique_prefix_alias_and_any_case(
    shell: ExchangeShell, org: Organization
) -> None:
    host = RecordingHost()
    run(shell, "set-sendconnector", (None, PARTNER), ("PO", "2526"), ("wi", None), host=host)
    assert host.lines == [f'What if: Configuring Send connector "{PARTNER}".']
    run(shell, "Set-SendConnector", ("identity", PARTNER), ("pOrT", "2526"), ("cf", False))
    assert org.connector(PARTNER).port == 2526


def test_mechanism_by_number_and_lists_from_a_single_value(
    shell: ExchangeShell, org: Organization
) -> None:
    run(
        shell,
        "Set-SendConnector",
        (None, PARTNER),
        ("SmartHostAuthMechanism", 2),
        ("AuthenticationCredential", LabCredential("relay@contoso.lab", "pw")),
        ("AddressSpaces", "fabrikam.example"),
        ("SmartHosts", "[127.0.0.1]"),
    )
    partner = org.connector(PARTNER)
    assert partner.smart_host_auth_mechanism == "BasicAuth"
    assert partner.address_spaces == ["SMTP:fabrikam.example;1"]
    assert partner.smart_hosts == ["[127.0.0.1]"]


# --- Set-SendConnector --------------------------------------------------------------------------


def test_credential_is_stored_and_only_its_user_name_comes_back(
    shell: ExchangeShell, org: Organization
) -> None:
    secret = "Relay-Pa55word-never-shown"
    run(
        shell,
        "Set-SendConnector",
        ("Identity", RELAY),
        ("AuthenticationCredential", LabCredential("relay@contoso.lab", secret)),
        ("Confirm", False),
    )
    assert org.connector(RELAY).credential == LabCredential("relay@contoso.lab", secret)
    everything = run(shell, "Get-SendConnector")
    # the cmdlet returns the stored credential; the wire flattens it (lab/wire.py)
    assert props(shell, RELAY)["AuthenticationCredential"].username == "relay@contoso.lab"
    assert secret not in repr(everything)


def test_empty_password_is_ignored_and_dns_routing_wipes_the_credential(
    shell: ExchangeShell, org: Organization
) -> None:
    stored = org.connector(ARCHIVE).credential
    run(
        shell,
        "Set-SendConnector",
        (None, ARCHIVE),
        ("AuthenticationCredential", LabCredential("other@contoso.lab", "")),
    )
    assert org.connector(ARCHIVE).credential == stored
    run(shell, "Set-SendConnector", (None, ARCHIVE), ("DNSRoutingEnabled", True))
    archive = props(shell, ARCHIVE)
    assert archive["SmartHosts"] == [] and archive["SmartHostAuthMechanism"] == "None"
    assert archive["AuthenticationCredential"] is None
    assert org.connector(ARCHIVE).credential is None


@pytest.mark.parametrize(
    ("params", "error_id"),
    [
        ([("SmartHosts", ["relay.contoso.lab"])], "SmartHostsWithDnsRoutingEnabled"),
        ([("DNSRoutingEnabled", False)], "SmartHostNotSet"),
        ([("SmartHostAuthMechanism", "BasicAuth")], "AuthMechanismWithDnsRoutingEnabled"),
        ([("RequireTLS", True), ("IgnoreSTARTTLS", True)], "RequireTlsWithIgnoreStartTls"),
        ([("TlsAuthLevel", "EncryptionOnly")], "TlsAuthLevelWithRequireTlsDisabled"),
        ([("AddressSpaces", [])], "AddressSpacesNotSet"),
    ],
)
def test_exchange_rules_are_exchange_errors_with_hex_ids_and_change_nothing(
    shell: ExchangeShell, org: Organization, params, error_id: str
) -> None:
    """FullyQualifiedErrorId shape of exchange-notes.md ("What comes back"): a hex id per
    error, never the rule's symbolic name."""
    before = org.connector(INTERNET)
    error = error_of(shell, "Set-SendConnector", ("Identity", INTERNET), *params)
    hex_id = ERROR_HEX_IDS[error_id]
    assert f"] {hex_id},Microsoft.Exchange.Management.SystemConfigurationTasks." in error.error_id
    assert "[FailureCategory=Cmdlet-DataValidationException]" in error.error_id
    assert error_id not in error.error_id
    assert error.error_id.startswith("[Server=EX01,RequestId=")
    assert error.exception_type == "Microsoft.Exchange.Data.DataValidationException"
    assert org.connector(INTERNET) == before


def test_what_if_validates_writes_the_host_and_changes_nothing(
    shell: ExchangeShell, org: Organization
) -> None:
    before = org.connector(PARTNER)
    host = RecordingHost()
    out = run(
        shell, "Set-SendConnector", (None, PARTNER), ("Port", 587), ("WhatIf", None), host=host
    )
    assert out == [] and host.lines == [f'What if: Configuring Send connector "{PARTNER}".']
    assert org.connector(PARTNER) == before
    with pytest.raises(CmdletError, match="SmartHosts"):
        run(shell, "Set-SendConnector", (None, PARTNER), ("SmartHosts", []), ("WhatIf", True))


def test_confirm_true_cannot_prompt_a_remote_client(
    shell: ExchangeShell, org: Organization
) -> None:
    before = org.connector(PARTNER)
    error = error_of(shell, "Set-SendConnector", (None, PARTNER), ("Port", 587), ("Confirm", None))
    assert error.exception_type == "System.Management.Automation.Host.HostException"
    assert org.connector(PARTNER) == before


def test_set_takes_connectors_piped_from_get(shell: ExchangeShell, org: Organization) -> None:
    piped = run(shell, "Get-SendConnector", (None, "Outbound to P*"))
    run(shell, "Set-SendConnector", ("Port", 2600), pipeline=piped)
    assert org.connector(PARTNER).port == 2600
    error = error_of(shell, "Set-SendConnector", ("Port", 2600))
    assert error.error_id == "MissingMandatoryParameter,Set-SendConnector"


def test_unknown_source_transport_server_is_not_found(shell: ExchangeShell) -> None:
    error = error_of(
        shell, "Set-SendConnector", (None, PARTNER), ("SourceTransportServers", ["EX09"])
    )
    assert "object 'EX09' couldn't be found" in error.message


def test_values_are_normalised_like_exchange(shell: ExchangeShell) -> None:
    run(
        shell,
        "Set-SendConnector",
        (None, PARTNER),
        ("MaxMessageSize", "10MB"),
        ("SourceTransportServers", ["ex02.contoso.lab"]),
        ("ProtocolLoggingLevel", "verbose"),
    )
    partner = props(shell, PARTNER)
    assert partner["MaxMessageSize"] == "10 MB (10,485,760 bytes)"
    assert partner["SourceTransportServers"] == ["EX02"]
    assert partner["ProtocolLoggingLevel"] == "Verbose"


# --- Get-Queue / Retry-Queue ------------------------------------------------------------------


def test_get_queue_include_smart_host_delivery(shell: ExchangeShell, org: Organization) -> None:
    queues = run(shell, "Get-Queue", ("Include", "SmartHostConnectorDelivery"))
    by_connector = {q.properties["NextHopConnector"]: q for q in queues}
    assert org.connector(INTERNET).guid not in by_connector
    relay = by_connector[org.connector(RELAY).guid]
    assert relay.type_names[0] == "Microsoft.Exchange.Data.QueueViewer.ExtensibleQueueInfo"
    assert relay.to_string == relay.properties["Identity"] == "EX01\\4"
    assert relay.properties["Status"] == "Retry"
    assert relay.properties["MessageCount"] == 3
    assert relay.properties["NextHopDomain"] == "localhost"
    assert relay.properties["LastError"].startswith("[{LRT=")  # the 2013+ wrapper (notes)
    assert (
        "{LED=451 5.7.3 Cannot achieve Exchange Server authentication};{FQDN=localhost};"
        "{IP=127.0.0.1}]"
    ) in relay.properties["LastError"]


def test_get_queue_by_identity_and_filter(shell: ExchangeShell) -> None:
    assert run(shell, "Get-Queue", (None, "EX01\\5"))[0].properties["MessageCount"] == 2
    assert run(shell, "Get-Queue", ("Identity", "5"))[0].to_string == "EX01\\5"
    retrying = run(shell, "Get-Queue", ("Filter", "Status -eq 'Retry' -and MessageCount -gt 2"))
    assert [q.to_string for q in retrying] == ["EX01\\4"]
    empty = run(shell, "Get-Queue", ("Filter", "{MessageCount -eq 0}"))
    assert {q.to_string for q in empty} == {"EX01\\3", "EX01\\6"}
    assert run(shell, "Get-Queue", ("Include", "Empty"), ("Exclude", "DnsConnectorDelivery"))


def test_get_queue_errors(shell: ExchangeShell) -> None:
    assert "couldn't be found" in error_of(shell, "Get-Queue", (None, "EX01\\99")).message
    bad = error_of(shell, "Get-Queue", ("Filter", "Status = Retry"))
    assert bad.error_id == "ParameterBindingFailed,Get-Queue"
    both = error_of(shell, "Get-Queue", (None, "EX01\\4"), ("Filter", "Status -eq 'Retry'"))
    assert both.error_id == "AmbiguousParameterSet,Get-Queue"
    assert "SmartHostConnectorDelivery" in error_of(shell, "Get-Queue", ("Include", "X")).message


def test_retry_queue_what_if_does_nothing(shell: ExchangeShell, org: Organization) -> None:
    host = RecordingHost()
    run(shell, "Retry-Queue", ("Identity", "EX01\\4"), ("WhatIf", None), host=host)
    assert host.lines == ['What if: Retrying queue "EX01\\4".']
    org.wait_for_deliveries()
    (queue,) = [q for q in org.queues() if q.identity == "EX01\\4"]
    assert (queue.status, queue.retry_count) == ("Retry", 3)
