"""Exchange's Set-SendConnector rules, the lab's own implementation.

Deliberately independent of the tool's pre-flight checks (``remediate.core.preflight``): the lab
plays Exchange, and a test compares the two. Like Exchange, the rules judge the connector as
it would be saved (current settings plus the change), so a connector that is already broken
refuses every change that does not repair it.

The silent rules are applied, not reported (exchange-notes.md, "Transport behaviour that the
lab must copy"): a connector on DNS routing keeps no smart hosts and no mechanism; a mechanism
sent together with ``-DNSRoutingEnabled $true`` is reset to None; switching to DNS routing
deletes the stored credential only when the mechanism was not None; a credential with an empty
password is ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import Any

from remediate.lab.api import LabCredential
from remediate.lab.org import Connector

MAX_CREDENTIAL_PART = 256
CREDENTIAL_MECHANISMS = ("BasicAuth", "BasicAuthRequireTLS")
EDGESYNC_PREFIX = "EdgeSync -"
# Changes that make Set-SendConnector ask ShouldContinue on an EdgeSync connector.
EDGESYNC_GUARDED = ("smart_hosts", "address_spaces")


class RuleViolation(Exception):
    """A change Exchange refuses: ``error_id`` names the rule, ``parameter`` the culprit."""

    def __init__(self, error_id: str, parameter: str, message: str) -> None:
        super().__init__(message)
        self.error_id = error_id
        self.parameter = parameter
        self.message = message


def apply_changes(
    current: Connector,
    changes: Mapping[str, Any],
    *,
    smtp_certificates: Collection[str] | None = None,
) -> Connector:
    """The connector as Exchange would save it, or RuleViolation. ``changes`` maps
    Connector attribute names to already-converted values; ``current`` is not modified.
    ``smtp_certificates``: the ``<I>issuer<S>subject`` names of the certificates enabled for
    SMTP on the connector's source servers; None skips the TlsCertificateName check."""
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
        _dns_routing(current, new, changes)
    else:
        _smart_host_routing(new)
    _tls_rules(new)
    _domain_secure_rules(new)
    if smtp_certificates is not None and changes.get("tls_certificate_name"):
        _certificate_rule(changes["tls_certificate_name"], smtp_certificates)
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


def needs_force(current: Connector, changes: Mapping[str, Any]) -> bool:
    """An EdgeSync connector asks ShouldContinue before a SmartHosts or AddressSpaces change;
    only -Force answers it (exchange-notes.md: -Confirm:$false does not)."""
    return current.name.startswith(EDGESYNC_PREFIX) and any(
        key in changes for key in EDGESYNC_GUARDED
    )


def _dns_routing(current: Connector, new: Connector, changes: dict[str, Any]) -> None:
    if changes.get("smart_hosts"):
        raise RuleViolation(
            "SmartHostsWithDnsRoutingEnabled",
            "SmartHosts",
            "SmartHosts can't be set while DNSRoutingEnabled is $true. To route mail "
            "through smart hosts, also set DNSRoutingEnabled to $false.",
        )
    mechanism = changes.get("smart_host_auth_mechanism", "None")
    if mechanism != "None" and "dns_routing_enabled" not in changes:
        # Rule 1: a mechanism set on a connector that stays DNS-routed, without passing
        # -DNSRoutingEnabled, is an error. Sent together with -DNSRoutingEnabled $true it is
        # reset to None silently (below).
        raise RuleViolation(
            "AuthMechanismWithDnsRoutingEnabled",
            "SmartHostAuthMechanism",
            f"SmartHostAuthMechanism can't be set to {mechanism} while DNSRoutingEnabled is "
            "$true. Set DNSRoutingEnabled to $false and specify SmartHosts.",
        )
    # Silent: switching to DNS routing deletes the credential only when the connector's
    # mechanism was not None; smart hosts and mechanism never stay.
    switching = not current.dns_routing_enabled
    if switching and current.smart_host_auth_mechanism != "None" and "credential" not in changes:
        new.credential = None
    new.smart_hosts = []
    new.smart_host_auth_mechanism = "None"


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


def _domain_secure_rules(new: Connector) -> None:
    """DomainSecureEnabled needs DNS routing and excludes IgnoreSTARTTLS and TlsAuthLevel
    (exchange-notes.md, "Transport behaviour"; Set-SendConnector docs, DomainSecureEnabled)."""
    if not new.domain_secure_enabled:
        return
    if not new.dns_routing_enabled:
        raise RuleViolation(
            "DomainSecureEnabledWithoutDnsRouting",
            "DomainSecureEnabled",
            "DomainSecureEnabled can only be set to $true on a Send connector that uses DNS "
            "routing (DNSRoutingEnabled $true).",
        )
    if new.ignore_starttls:
        raise RuleViolation(
            "DomainSecureEnabledWithIgnoreStartTls",
            "DomainSecureEnabled",
            "DomainSecureEnabled and IgnoreSTARTTLS can't both be set to $true on the same "
            "Send connector.",
        )
    if new.tls_auth_level is not None:
        raise RuleViolation(
            "DomainSecureEnabledWithTlsAuthLevel",
            "TlsAuthLevel",
            "The TlsAuthLevel parameter can't be set on a Send connector with "
            "DomainSecureEnabled set to $true.",
        )


def _certificate_rule(name: str, smtp_certificates: Collection[str]) -> None:
    """TlsCertificateName must name a certificate enabled for SMTP (exchange-notes.md,
    Send connector properties; Get-ExchangeCertificate lists the Services)."""
    wanted = _certificate_key(name)
    if wanted not in {_certificate_key(known) for known in smtp_certificates}:
        raise RuleViolation(
            "TlsCertificateNotFound",
            "TlsCertificateName",
            f'The certificate "{name}" specified in TlsCertificateName couldn\'t be found on '
            "the source transport servers, or it isn't enabled for the SMTP service. Use "
            "Get-ExchangeCertificate to find one enabled for SMTP.",
        )


def _certificate_key(name: str) -> tuple[str, str]:
    """``<I>issuer<S>subject`` compared case-insensitively, spaces after commas ignored."""
    issuer, _, subject = name.removeprefix("<I>").partition("<S>")

    def norm(dn: str) -> str:
        return ",".join(part.strip() for part in dn.split(",")).lower()

    return norm(issuer), norm(subject)
