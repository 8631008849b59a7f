"""Exchange's silent and guarded Set-SendConnector rules in the lab (issue 11), each test named
after its source: exchange-notes.md ("Rules Set-SendConnector enforces", "Transport behaviour
that the lab must copy", "What comes back") and Microsoft's Set-SendConnector and
Get-ExchangeCertificate docs."""

from __future__ import annotations

import pytest

from remediate.lab.api import CmdletError, LabCredential
from remediate.lab.cmdlets import ERROR_HEX_IDS, ExchangeShell
from remediate.lab.org import Organization
from remediate.lab.seed import EDGESYNC
from tests.lab.org_fixtures import (  # noqa: F401 - fixtures
    ARCHIVE,
    INTERNET,
    PARTNER,
    RecordingHost,
    org_fixture,
    run,
    shell_fixture,
)


def error_of(shell: ExchangeShell, name: str, *params) -> CmdletError:
    with pytest.raises(CmdletError) as caught:
        run(shell, name, *params)
    return caught.value


def set_connector(shell: ExchangeShell, name: str, *params) -> None:
    run(shell, "Set-SendConnector", ("Identity", name), *params, ("Confirm", False))


def test_notes_mechanism_sent_with_dns_routing_true_is_reset_to_none_silently(
    shell: ExchangeShell, org: Organization
) -> None:
    set_connector(
        shell, INTERNET, ("DNSRoutingEnabled", True), ("SmartHostAuthMechanism", "BasicAuth")
    )
    internet = org.connector(INTERNET)
    assert internet.dns_routing_enabled and internet.smart_host_auth_mechanism == "None"


def test_notes_rule_1_mechanism_on_a_dns_routed_connector_without_dns_routing_is_an_error(
    shell: ExchangeShell,
) -> None:
    error = error_of(
        shell, "Set-SendConnector", ("Identity", INTERNET), ("SmartHostAuthMechanism", "BasicAuth")
    )
    assert ERROR_HEX_IDS["AuthMechanismWithDnsRoutingEnabled"] in error.error_id


def test_notes_switching_to_dns_routing_clears_the_credential_only_when_the_mechanism_is_not_none(
    shell: ExchangeShell, org: Organization
) -> None:
    stored = org.connector(ARCHIVE).credential
    set_connector(shell, ARCHIVE, ("SmartHostAuthMechanism", "None"))
    set_connector(shell, ARCHIVE, ("DNSRoutingEnabled", True))
    kept = org.connector(ARCHIVE)
    assert kept.credential == stored and kept.smart_hosts == []  # mechanism None: kept
    set_connector(shell, PARTNER, ("DNSRoutingEnabled", True))  # BasicAuth: deleted
    assert org.connector(PARTNER).credential is None


@pytest.mark.parametrize(
    ("params", "error_id"),
    [
        ([("DomainSecureEnabled", True)], "DomainSecureEnabledWithoutDnsRouting"),
        (
            [("DomainSecureEnabled", True), ("DNSRoutingEnabled", True), ("IgnoreSTARTTLS", True)],
            "DomainSecureEnabledWithIgnoreStartTls",
        ),
        (
            [
                ("DomainSecureEnabled", True),
                ("DNSRoutingEnabled", True),
                ("RequireTLS", True),
                ("TlsAuthLevel", "EncryptionOnly"),
            ],
            "DomainSecureEnabledWithTlsAuthLevel",
        ),
    ],
)
def test_notes_domain_secure_needs_dns_routing_and_excludes_ignore_starttls_and_tls_auth_level(
    shell: ExchangeShell, org: Organization, params, error_id: str
) -> None:
    before = org.connector(PARTNER)
    error = error_of(shell, "Set-SendConnector", ("Identity", PARTNER), *params)
    assert f"] {ERROR_HEX_IDS[error_id]},Microsoft.Exchange." in error.error_id
    assert org.connector(PARTNER) == before


def test_notes_domain_secure_on_a_dns_routed_connector_is_saved(
    shell: ExchangeShell, org: Organization
) -> None:
    set_connector(shell, INTERNET, ("DomainSecureEnabled", True))
    assert org.connector(INTERNET).domain_secure_enabled is True


def test_docs_get_exchange_certificate_lists_thumbprint_subject_issuer_services_per_server(
    shell: ExchangeShell,
) -> None:
    local = run(shell, "Get-ExchangeCertificate")
    assert {c.properties["Identity"].split("\\")[0] for c in local} == {"EX01"}
    services = {c.properties["Subject"]: c.properties["Services"] for c in local}
    assert services == {"CN=EX01.contoso.lab": "IMAP, POP, IIS, SMTP", "CN=WMSvc-SHA2-EX01": "None"}
    on_ex02 = run(shell, "Get-ExchangeCertificate", ("Server", "EX02"))
    assert {c.properties["Subject"] for c in on_ex02} == {
        "CN=EX02.contoso.lab",
        "CN=WMSvc-SHA2-EX02",
    }
    smtp = next(c for c in on_ex02 if "SMTP" in c.properties["Services"])
    assert smtp.type_names[0].endswith("SystemConfigurationTasks.ExchangeCertificate")
    assert len(smtp.properties["Thumbprint"]) == 40
    assert "EX02.contoso.lab" in smtp.properties["CertificateDomains"]
    assert smtp.properties["NotAfter"] > smtp.properties["NotBefore"]
    (again,) = run(shell, "Get-ExchangeCertificate", (None, smtp.properties["Identity"]))
    assert again.properties == smtp.properties
    (by_thumbprint,) = run(
        shell,
        "Get-ExchangeCertificate",
        ("Thumbprint", smtp.properties["Thumbprint"]),
        ("Server", "EX02.contoso.lab"),
    )
    assert by_thumbprint.properties["Identity"] == smtp.properties["Identity"]
    assert (
        "couldn't be found" in error_of(shell, "Get-ExchangeCertificate", (None, "AB" * 20)).message
    )


def test_notes_tls_certificate_name_must_name_a_certificate_enabled_for_smtp(
    shell: ExchangeShell, org: Organization
) -> None:
    certificates = {
        c.properties["Subject"]: c.properties for c in run(shell, "Get-ExchangeCertificate")
    }
    smtp = certificates["CN=EX01.contoso.lab"]
    wmsvc = certificates["CN=WMSvc-SHA2-EX01"]
    refused = error_of(
        shell,
        "Set-SendConnector",
        ("Identity", PARTNER),
        ("TlsCertificateName", f"<I>{wmsvc['Issuer']}<S>{wmsvc['Subject']}"),
    )
    assert ERROR_HEX_IDS["TlsCertificateNotFound"] in refused.error_id
    unknown = error_of(
        shell, "Set-SendConnector", ("Identity", PARTNER), ("TlsCertificateName", "<I>CN=X<S>CN=Y")
    )
    assert ERROR_HEX_IDS["TlsCertificateNotFound"] in unknown.error_id
    assert org.connector(PARTNER).tls_certificate_name is None
    name = f"<I>{smtp['Issuer']}<S>{smtp['Subject']}"
    set_connector(shell, PARTNER, ("TlsCertificateName", name))
    assert org.connector(PARTNER).tls_certificate_name == name


def test_notes_edgesync_connectors_need_force_for_smart_hosts_and_address_spaces(
    shell: ExchangeShell, org: Organization
) -> None:
    before = org.connector(EDGESYNC)
    for params in (
        [("AddressSpaces", ["SMTP:*;50"])],
        [("DNSRoutingEnabled", False), ("SmartHosts", ["localhost"])],
    ):
        error = error_of(
            shell, "Set-SendConnector", ("Identity", EDGESYNC), *params, ("Confirm", False)
        )
        assert error.exception_type == "System.Management.Automation.Host.HostException"
        assert "-Force" in error.message
    assert org.connector(EDGESYNC) == before
    set_connector(shell, EDGESYNC, ("Port", 587))  # other changes ask nothing
    set_connector(shell, EDGESYNC, ("AddressSpaces", ["SMTP:*;50"]), ("Force", None))
    assert org.connector(EDGESYNC).address_spaces == ["SMTP:*;50"]
    host = RecordingHost()
    run(
        shell,
        "Set-SendConnector",
        ("Identity", EDGESYNC),
        ("AddressSpaces", ["SMTP:*;1"]),
        ("WhatIf", None),
        host=host,
    )
    assert host.lines and org.connector(EDGESYNC).address_spaces == ["SMTP:*;50"]


def test_notes_ip_smart_hosts_are_stored_bracketed(shell: ExchangeShell, org: Organization) -> None:
    set_connector(
        shell, PARTNER, ("SmartHosts", ["10.0.0.5", "[10.0.0.6]", "relay.contoso.lab", "::1"])
    )
    assert org.connector(PARTNER).smart_hosts == [
        "[10.0.0.5]",
        "[10.0.0.6]",
        "relay.contoso.lab",
        "[::1]",
    ]
    (partner_queue,) = [q for q in run(shell, "Get-Queue") if q.to_string == "EX01\\5"]
    assert (
        partner_queue.properties["NextHopDomain"] == "[10.0.0.5],[10.0.0.6],relay.contoso.lab,[::1]"
    )


def test_notes_error_ids_name_the_session_server_and_a_hex_id(org: Organization) -> None:
    """``[Server=<the session's server>,RequestId=...,TimeStamp=...] [FailureCategory=Cmdlet-
    <Exception>] <HEX>,<task>``: a shell on EX02 says Server=EX02."""
    error = error_of(ExchangeShell(org, server="EX02"), "Get-SendConnector", ("Identity", "Nope"))
    assert error.error_id.startswith("[Server=EX02,RequestId=")
    assert "[FailureCategory=Cmdlet-ManagementObjectNotFoundException] 4B953CE," in error.error_id
    assert all(len(h) in (7, 8) and int(h, 16) >= 0 for h in ERROR_HEX_IDS.values())
    assert len(set(ERROR_HEX_IDS.values())) == len(ERROR_HEX_IDS)


def test_notes_an_empty_password_credential_is_still_ignored(
    shell: ExchangeShell, org: Organization
) -> None:
    stored = org.connector(PARTNER).credential
    set_connector(shell, PARTNER, ("AuthenticationCredential", LabCredential("x@contoso.lab", "")))
    assert org.connector(PARTNER).credential == stored
