"""Exchange's Set-SendConnector rules, the lab's own implementation.

Deliberately independent of the tool's pre-flight checks (``remediate.preflight``): the lab
plays Exchange, and a test compares the two. Like Exchange, the rules judge the connector as
it would be saved (current settings plus the change), so a connector that is already broken
refuses every change that does not repair it.

The silent rules are applied, not reported: a connector on DNS routing keeps no smart hosts,
no mechanism and no credential; a credential with an empty password is ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from remediate.lab.api import LabCredential
from remediate.lab.org import Connector

MAX_CREDENTIAL_PART = 256
CREDENTIAL_MECHANISMS = ("BasicAuth", "BasicAuthRequireTLS")


class RuleViolation(Exception):
    """A change Exchange refuses: ``error_id`` names the rule, ``parameter`` the culprit."""

    def __init__(self, error_id: str, parameter: str, message: str) -> None:
        super().__init__(message)
        self.error_id = error_id
        self.parameter = parameter
        self.message = message


def apply_changes(current: Connector, changes: Mapping[str, Any]) -> Connector:
    """The connector as Exchange would save it, or RuleViolation. ``changes`` maps
    Connector attribute names to already-converted values; ``current`` is not modified."""
    changes = dict(changes)
    if "credential" in changes:
        credential = changes["credential"]
        if isinstance(credential, LabCredential):
            _check_credential_length(credential)
            if credential.password == "":
                del changes["credential"]  # Exchange ignores it without a word
    new = dataclasses.replace(current, **changes)
    new.smart_hosts = list(new.smart_hosts)
    if new.dns_routing_enabled:
        _dns_routing(new, changes)
    else:
        _smart_host_routing(new)
    _tls_rules(new)
    if not new.address_spaces:
        raise RuleViolation(
            "AddressSpacesNotSet",
            "AddressSpaces",
            "A Send connector must have at least one address space. Specify a value for "
            "the AddressSpaces parameter.",
        )
    return new


def _check_credential_length(credential: LabCredential) -> None:
    for part, value in (("user name", credential.username), ("password", credential.password)):
        if len(value) > MAX_CREDENTIAL_PART:
            raise RuleViolation(
                "AuthenticationCredentialTooLong",
                "AuthenticationCredential",
                f"The {part} of AuthenticationCredential can't be longer than "
                f"{MAX_CREDENTIAL_PART} characters.",
            )


def _dns_routing(new: Connector, changes: dict[str, Any]) -> None:
    if changes.get("smart_hosts"):
        raise RuleViolation(
            "SmartHostsWithDnsRoutingEnabled",
            "SmartHosts",
            "SmartHosts can't be set while DNSRoutingEnabled is $true. To route mail "
            "through smart hosts, also set DNSRoutingEnabled to $false.",
        )
    mechanism = changes.get("smart_host_auth_mechanism", "None")
    if mechanism != "None":
        raise RuleViolation(
            "AuthMechanismWithDnsRoutingEnabled",
            "SmartHostAuthMechanism",
            f"SmartHostAuthMechanism can't be set to {mechanism} while DNSRoutingEnabled is "
            "$true. Set DNSRoutingEnabled to $false and specify SmartHosts.",
        )
    # Silent: DNS routing drops everything that belonged to smart-host routing.
    new.smart_hosts = []
    new.smart_host_auth_mechanism = "None"
    new.credential = None


def _smart_host_routing(new: Connector) -> None:
    if not new.smart_hosts:
        raise RuleViolation(
            "SmartHostNotSet",
            "SmartHosts",
            "When DNSRoutingEnabled is $false, you must specify at least one smart host in "
            "the SmartHosts parameter.",
        )
    if new.smart_host_auth_mechanism in CREDENTIAL_MECHANISMS and new.credential is None:
        raise RuleViolation(
            "AuthenticationCredentialNotSet",
            "AuthenticationCredential",
            f"SmartHostAuthMechanism {new.smart_host_auth_mechanism} requires a user name and "
            "password. Specify them with the AuthenticationCredential parameter.",
        )


def _tls_rules(new: Connector) -> None:
    if new.require_tls and new.ignore_starttls:
        raise RuleViolation(
            "RequireTlsWithIgnoreStartTls",
            "IgnoreSTARTTLS",
            "RequireTLS and IgnoreSTARTTLS can't both be set to $true on the same Send connector.",
        )
    if new.tls_auth_level is not None and not new.require_tls:
        raise RuleViolation(
            "TlsAuthLevelWithRequireTlsDisabled",
            "TlsAuthLevel",
            "The TlsAuthLevel parameter can only be set if the RequireTLS parameter is set "
            "to $true.",
        )
    if new.tls_domain and new.tls_auth_level != "DomainValidation":
        raise RuleViolation(
            "TlsDomainWithIncorrectTlsAuthLevel",
            "TlsDomain",
            "The TLSDomain parameter can only be set if the TLSAuthLevel parameter is set to "
            "DomainValidation.",
        )
    if (
        new.tls_auth_level == "DomainValidation"
        and not new.dns_routing_enabled
        and not new.tls_domain
    ):
        raise RuleViolation(
            "TlsDomainNotSet",
            "TlsDomain",
            "When TLSAuthLevel is DomainValidation on a Send connector that uses smart hosts, "
            "the TLSDomain parameter must be set.",
        )
