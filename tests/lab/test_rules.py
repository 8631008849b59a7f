"""The lab's own Set-SendConnector rules (rules.py), on Connector values: each rule refuses
what Exchange refuses, the silent rules mangle what Exchange mangles, good changes pass."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from remediate.lab import rules
from remediate.lab.api import LabCredential
from remediate.lab.model import Connector
from remediate.lab.rules import RuleViolation, apply_changes

CREDENTIAL = LabCredential("relay@contoso.lab", "S3cret-relay")


def dns_connector() -> Connector:
    return Connector(
        "Internet Mail", "11111111-1111-1111-1111-111111111111", ["SMTP:*;1"], ["EX01"]
    )


def smart_host_connector(**overrides: Any) -> Connector:
    values: dict[str, Any] = {
        "dns_routing_enabled": False,
        "smart_hosts": ["relay.contoso.lab"],
        "smart_host_auth_mechanism": "BasicAuth",
        "credential": CREDENTIAL,
        "port": 587,
    }
    values.update(overrides)
    return Connector(
        "Outbound to Relay",
        "22222222-2222-2222-2222-222222222222",
        ["SMTP:tailspintoys.example;1"],
        ["EX01"],
        **values,
    )


@pytest.mark.parametrize(
    ("start", "changes", "error_id", "parameter"),
    [
        # 1. a mechanism needs smart-host routing
        (dns_connector, {"smart_host_auth_mechanism": "BasicAuth"}, "AuthMechanismWith", None),
        # 2. smart hosts on a connector that stays DNS-routed; DNS off without smart hosts
        (dns_connector, {"smart_hosts": ["relay.contoso.lab"]}, "SmartHostsWithDns", None),
        (dns_connector, {"dns_routing_enabled": False}, "SmartHostNotSet", "SmartHosts"),
        (smart_host_connector, {"smart_hosts": []}, "SmartHostNotSet", "SmartHosts"),
        # 3. BasicAuth / BasicAuthRequireTLS without a credential
        (
            lambda: smart_host_connector(credential=None, smart_host_auth_mechanism="None"),
            {"smart_host_auth_mechanism": "BasicAuthRequireTLS"},
            "AuthenticationCredentialNotSet",
            "AuthenticationCredential",
        ),
        (
            smart_host_connector,
            {"credential": None},
            "AuthenticationCredentialNotSet",
            "AuthenticationCredential",
        ),
        # 4. RequireTLS with IgnoreSTARTTLS
        (
            smart_host_connector,
            {"require_tls": True, "ignore_starttls": True},
            "RequireTlsWithIgnoreStartTls",
            "IgnoreSTARTTLS",
        ),
        # 5. TLS levels and domains
        (
            smart_host_connector,
            {"tls_auth_level": "EncryptionOnly"},
            "TlsAuthLevelWithRequireTlsDisabled",
            "TlsAuthLevel",
        ),
        (
            smart_host_connector,
            {"require_tls": True, "tls_auth_level": "CertificateValidation", "tls_domain": "x.lab"},
            "TlsDomainWithIncorrectTlsAuthLevel",
            "TlsDomain",
        ),
        (
            smart_host_connector,
            {"require_tls": True, "tls_auth_level": "DomainValidation"},
            "TlsDomainNotSet",
            "TlsDomain",
        ),
        # 6. no address space
        (dns_connector, {"address_spaces": []}, "AddressSpacesNotSet", "AddressSpaces"),
        # user name and password are each at most 256 characters
        (
            smart_host_connector,
            {"credential": LabCredential("u" * 257, "p")},
            "AuthenticationCredentialTooLong",
            "AuthenticationCredential",
        ),
        (
            smart_host_connector,
            {"credential": LabCredential("u", "p" * 257)},
            "AuthenticationCredentialTooLong",
            "AuthenticationCredential",
        ),
    ],
)
def test_each_rule_refuses(start, changes, error_id: str, parameter: str | None) -> None:
    current = start()
    before = dataclasses.replace(current)
    with pytest.raises(RuleViolation) as caught:
        apply_changes(current, changes)
    assert caught.value.error_id.startswith(error_id)
    if parameter:
        assert caught.value.parameter == parameter
    assert caught.value.message.endswith(".")
    assert current == before  # the stored connector is never touched


def test_the_tls_domain_message_is_exchanges() -> None:
    with pytest.raises(RuleViolation) as caught:
        apply_changes(dns_connector(), {"tls_domain": "contoso.lab"})
    assert caught.value.message == (
        "The TLSDomain parameter can only be set if the TLSAuthLevel parameter is set to "
        "DomainValidation."
    )


def test_switching_to_dns_routing_silently_wipes_smart_hosts_mechanism_and_credential() -> None:
    updated = apply_changes(smart_host_connector(), {"dns_routing_enabled": True})
    assert updated.dns_routing_enabled
    assert updated.smart_hosts == []
    assert updated.smart_host_auth_mechanism == "None"
    assert updated.credential is None


def test_a_credential_with_an_empty_password_is_silently_ignored() -> None:
    updated = apply_changes(
        smart_host_connector(), {"credential": LabCredential("new@contoso.lab", ""), "port": 25}
    )
    assert updated.credential == CREDENTIAL
    assert updated.port == 25


def test_an_empty_password_cannot_satisfy_rule_3() -> None:
    broken = smart_host_connector(credential=None, smart_host_auth_mechanism="None")
    with pytest.raises(RuleViolation, match="AuthenticationCredential"):
        apply_changes(
            broken,
            {
                "smart_host_auth_mechanism": "BasicAuth",
                "credential": LabCredential("relay@contoso.lab", ""),
            },
        )


def test_a_broken_connector_refuses_unrelated_changes_until_repaired() -> None:
    wiped = smart_host_connector(credential=None, smart_host_auth_mechanism="BasicAuthRequireTLS")
    with pytest.raises(RuleViolation, match="requires a user name and password"):
        apply_changes(wiped, {"port": 25})
    repaired = apply_changes(wiped, {"credential": CREDENTIAL})
    assert repaired.credential == CREDENTIAL


def test_moving_a_dns_connector_to_a_smart_host_in_one_change() -> None:
    updated = apply_changes(
        dns_connector(),
        {
            "dns_routing_enabled": False,
            "smart_hosts": ["relay.contoso.lab", "[127.0.0.1]"],
            "smart_host_auth_mechanism": "BasicAuthRequireTLS",
            "credential": CREDENTIAL,
            "port": 587,
            "require_tls": True,
            "tls_auth_level": "DomainValidation",
            "tls_domain": "relay.contoso.lab",
        },
    )
    assert updated.smart_hosts == ["relay.contoso.lab", "[127.0.0.1]"]
    assert (updated.port, updated.tls_domain) == (587, "relay.contoso.lab")
    assert not updated.dns_routing_enabled


def test_leaving_domain_validation_needs_the_tls_domain_cleared_too() -> None:
    strict = smart_host_connector(
        require_tls=True, tls_auth_level="DomainValidation", tls_domain="relay.contoso.lab"
    )
    with pytest.raises(RuleViolation, match="TLSDomain"):
        apply_changes(strict, {"tls_auth_level": "EncryptionOnly"})
    relaxed = apply_changes(strict, {"tls_auth_level": "EncryptionOnly", "tls_domain": None})
    assert relaxed.tls_auth_level == "EncryptionOnly" and relaxed.tls_domain is None


def test_rules_import_nothing_from_the_tool_outside_the_lab() -> None:
    """The lab's rules must stay independent of the tool's pre-flight implementation."""
    tree = ast.parse(Path(rules.__file__).read_text(encoding="utf-8"))
    imported = [
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    ] + [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    from_remediate = [name for name in imported if name.startswith("remediate")]
    assert from_remediate, "expected the lab's own modules"
    assert all(name.startswith("remediate.lab.") for name in from_remediate), from_remediate
