"""The Exchange cmdlets the lab serves: Get-SendConnector, Set-SendConnector, Get-Queue,
Retry-Queue and Get-ExchangeCertificate, over the shared ``Organization``.

A shell runs on one server (EX01, the first transport server): Get-Queue and Retry-Queue
without -Server or a ``Server\\N`` identity answer for that server only (Microsoft's Get-Queue
docs: "with no parameters, queries all queues on the local server").

``ExchangeShell(org)`` implements ``api.CommandRunner`` (one per shell). Binding and type
conversion follow PowerShell (``binding.py``); Exchange's own checks raise errors shaped like
Exchange's (ManagementObjectNotFoundException, the Set-SendConnector rules of ``rules.py``).
Returned objects carry Exchange's type names and ToString and go through ``wire``, so a
stored credential comes back as its type name only, as over real remoting.
"""

from __future__ import annotations

import datetime
import fnmatch
import ipaddress
import re
import uuid
from collections.abc import Callable
from typing import Any

from remediate.lab import binding
from remediate.lab.api import CmdletError, CommandCall, HostSink, LabObject
from remediate.lab.binding import Kind, Param, Signature
from remediate.lab.model import DOMAIN_CONTROLLER, Connector, ExchangeCertificate, Queue
from remediate.lab.org import Organization
from remediate.lab.protocol_log import SEND_LOG_PATH
from remediate.lab.rules import RuleViolation, apply_changes, needs_force
from remediate.lab.wire import Guid, MultiValued

# The chain a real server sends (exchange-notes.md, "What comes back over remote PowerShell").
CONNECTOR_TYPES = [
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.SmtpSendConnectorConfig",
    "Microsoft.Exchange.Data.Directory.SystemConfiguration.MailGateway",
    "Microsoft.Exchange.Data.Directory.ADLegacyVersionableObject",
    "Microsoft.Exchange.Data.Directory.ADConfigurationObject",
    "Microsoft.Exchange.Data.Directory.ADObject",
    "Microsoft.Exchange.Data.Directory.ADRawEntry",
    "Microsoft.Exchange.Data.ConfigurableObject",
]
CERTIFICATE_TYPES = [
    "Microsoft.Exchange.Management.SystemConfigurationTasks.ExchangeCertificate",
    "System.Security.Cryptography.X509Certificates.X509Certificate2",
    "System.Security.Cryptography.X509Certificates.X509Certificate",
]
QUEUE_TYPES = [
    "Microsoft.Exchange.Data.QueueViewer.ExtensibleQueueInfo",
    "Microsoft.Exchange.Data.QueueViewer.PagedDataObject",
]
MECHANISMS = ("None", "BasicAuth", "BasicAuthRequireTLS", "ExchangeServer", "ExternalAuthoritative")
_MECHANISM_CODES: tuple[tuple[int, str], ...] = (
    (0, "None"),
    (2, "BasicAuth"),
    (4, "BasicAuthRequireTLS"),
)
_MECHANISM_CODES += ((8, "ExchangeServer"), (16, "ExternalAuthoritative"))
DELIVERY_TYPES = (
    "Undefined",
    "DnsConnectorDelivery",
    "NonSmtpGatewayDelivery",
    "SmartHostConnectorDelivery",
    "SmtpRelayToRemoteAdSite",
    "SmtpRelayToTiRg",
    "SmtpDeliveryToMailbox",
    "SmtpRelayToDag",
    "SmtpRelayToMailboxDeliveryGroup",
    "SmtpRelayToConnectorSourceServers",
    "SmtpRelayToServers",
    "SmtpRelayWithinAdSite",
    "Unreachable",
    "ShadowRedundancy",
    "Heartbeat",
    "DeliveryAgent",
    "SmtpRelayToRemoteForest",
)
QUEUE_INCLUDES = ("Internal", "External", "Empty", *DELIVERY_TYPES)
_CONFIG_DN = (
    "CN=Connections,CN=Exchange Routing Group (DWBGZMFD01QNBJR),CN=Routing Groups,"
    "CN=Exchange Administrative Group (FYDIBOHF23SPDLT),CN=Administrative Groups,CN=Contoso,"
    "CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=contoso,DC=lab"
)
_NAMESPACE = {
    "Get-SendConnector": "Microsoft.Exchange.Management.SystemConfigurationTasks.GetSendConnector",
    "Set-SendConnector": "Microsoft.Exchange.Management.SystemConfigurationTasks.SetSendConnector",
    "Get-Queue": "Microsoft.Exchange.Management.QueueViewerTasks.GetQueueInfo",
    "Retry-Queue": "Microsoft.Exchange.Management.QueueViewerTasks.RetryQueue",
    "Get-ExchangeCertificate": "Microsoft.Exchange.Management.SystemConfigurationTasks"
    ".GetExchangeCertificate",
    "Get-TransportService": "Microsoft.Exchange.Management.SystemConfigurationTasks"
    ".GetTransportService",
}
_ADDRESS_SPACE = "Microsoft.Exchange.Data.AddressSpace"
_AD_OBJECT_ID = "Microsoft.Exchange.Data.Directory.ADObjectId"
NOT_FOUND_EXCEPTION = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"
VALIDATION_EXCEPTION = "Microsoft.Exchange.Data.DataValidationException"
# Exchange's FullyQualifiedErrorId carries a hexadecimal id, not a symbolic one
# (exchange-notes.md, "What comes back over remote PowerShell": 4B953CE for an object not
# found). The other ids are the lab's own, one per error, stable so that a client can only
# ever match on the exception type and category, as it must with Exchange.
ERROR_HEX_IDS = {
    "ManagementObjectNotFound": "4B953CE",
    "QueueNotFound": "A1E6F0D2",
    "AddressSpacesNotSet": "5DD2C3F1",
    "AuthenticationCredentialTooLong": "9E44B10A",
    "SmartHostsWithDnsRoutingEnabled": "3C1F77B8",
    "AuthMechanismWithDnsRoutingEnabled": "7A02E59C",
    "SmartHostNotSet": "C4D8A613",
    "AuthenticationCredentialNotSet": "1B6E93F0",
    "RequireTlsWithIgnoreStartTls": "E25A0C47",
    "TlsAuthLevelWithRequireTlsDisabled": "6F93D2AB",
    "TlsDomainWithIncorrectTlsAuthLevel": "8D0B4E15",
    "TlsDomainNotSet": "2E7C91D6",
    "DomainSecureEnabledWithoutDnsRouting": "B37F05A9",
    "DomainSecureEnabledWithIgnoreStartTls": "49C6E2F8",
    "DomainSecureEnabledWithTlsAuthLevel": "D1A84B73",
    "TlsCertificateNotFound": "F60E3A2C",
}


# --- value types of Exchange parameters ------------------------------------------------------

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_FQDN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")


def _smart_host(text: str) -> str:
    """A smart host as Exchange stores it: an IP address bracketed (``10.0.0.5`` reads back
    as ``[10.0.0.5]``, exchange-notes.md "What comes back"), a name as given."""
    value = text.strip()
    inner = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        return f"[{ipaddress.ip_address(inner)}]"
    except ValueError:
        pass
    if inner is value and _FQDN.match(value) and len(value) <= 255:
        return value
    raise ValueError(f'"{text}" isn\'t a valid smart host name or IP address.')


def _fqdn(text: str) -> str:
    value = text.strip()
    if _FQDN.match(value) and len(value) <= 255:
        return value
    raise ValueError(f'"{text}" isn\'t a valid fully qualified domain name.')


def _tls_domain(text: str) -> str:
    value = text.strip()
    if _FQDN.match(value.removeprefix("*.")) and len(value) <= 255:
        return value
    raise ValueError(f'"{text}" isn\'t a valid SMTP domain.')


def _address_space(text: str) -> str:
    """``[type:]domain[;cost]`` as Exchange stores it, ``SMTP:domain;cost``."""
    value = text.strip()
    kind, sep, rest = value.partition(":")
    if not sep:
        kind, rest = "SMTP", value
    domain, sep, cost_text = rest.partition(";")
    cost = int(cost_text) if cost_text.isdigit() else (1 if not sep else 0)
    domain_ok = domain in ("*", "--") or bool(_FQDN.match(domain.removeprefix("*.")))
    if kind.upper() != "SMTP" or not domain_ok or not 1 <= cost <= 100:
        raise ValueError(f'The address space "{text}" isn\'t valid.')
    return f"SMTP:{domain};{cost}"


def _certificate_name(text: str) -> str:
    if text.startswith("<I>") and "<S>" in text[3:]:
        return text
    raise ValueError(f'"{text}" isn\'t a valid certificate name. Use the form <I>issuer<S>subject.')


def _size(text: str) -> str:
    """MaxMessageSize as Exchange shows it: ``35 MB (36,700,160 bytes)`` or ``Unlimited``."""
    value = text.strip()
    if value.lower() == "unlimited":
        return "Unlimited"
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(B|KB|MB|GB)?", value, re.IGNORECASE)
    if not match:
        raise ValueError(f'"{text}" isn\'t a valid size. Use a number with B, KB, MB or GB.')
    unit = (match.group(2) or "B").upper()
    number = float(match.group(1))
    size = int(number * {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}[unit])
    if not 0 < size <= 2 * 1024**3:
        raise ValueError(f'The size "{text}" is out of range.')
    return f"{match.group(1)} {unit} ({size:,} bytes)"


def _timespan(text: str) -> str:
    match = re.fullmatch(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})", text.strip())
    if not match or int(match.group(3)) > 59 or int(match.group(4)) > 59:
        raise ValueError(f'"{text}" isn\'t a valid time span. Use the form dd.hh:mm:ss.')
    return text.strip()


# --- signatures --------------------------------------------------------------------------------

_IDENTITY = Param("Identity", Kind.ANY, position=0)
_DC = Param("DomainController", Kind.STRING, "Microsoft.Exchange.Data.Fqdn", convert=_fqdn)
_SERVER = Param("Server", Kind.STRING, "Microsoft.Exchange.Data.ServerIdParameter")
_FILTER = Param("Filter", Kind.STRING)

GET_SEND_CONNECTOR = Signature("Get-SendConnector", (_IDENTITY, _DC))
# Set-SendConnector: parameter -> Connector attribute.
SET_FIELDS = {
    "AddressSpaces": "address_spaces",
    "AuthenticationCredential": "credential",
    "Comment": "comment",
    "ConnectionInactivityTimeOut": "connection_inactivity_timeout",
    "DNSRoutingEnabled": "dns_routing_enabled",
    "DomainSecureEnabled": "domain_secure_enabled",
    "Enabled": "enabled",
    "ErrorPolicies": "error_policies",
    "ForceHELO": "force_helo",
    "Fqdn": "fqdn",
    "IgnoreSTARTTLS": "ignore_starttls",
    "MaxMessageSize": "max_message_size",
    "Port": "port",
    "ProtocolLoggingLevel": "protocol_logging_level",
    "RequireTLS": "require_tls",
    "SmartHostAuthMechanism": "smart_host_auth_mechanism",
    "SmartHosts": "smart_hosts",
    "SourceTransportServers": "source_transport_servers",
    "TlsAuthLevel": "tls_auth_level",
    "TlsCertificateName": "tls_certificate_name",
    "TlsDomain": "tls_domain",
}
SET_SEND_CONNECTOR = Signature(
    "Set-SendConnector",
    (
        _IDENTITY,
        _DC,
        Param(
            "AddressSpaces",
            Kind.STRINGS,
            "Microsoft.Exchange.Data.AddressSpace",
            nullable=True,
            convert=_address_space,
        ),
        Param("AuthenticationCredential", Kind.CREDENTIAL, nullable=True),
        Param("Comment", Kind.STRING, nullable=True),
        Param("ConnectionInactivityTimeOut", Kind.STRING, "System.TimeSpan", convert=_timespan),
        Param("DNSRoutingEnabled", Kind.BOOL),
        Param("DomainSecureEnabled", Kind.BOOL),
        Param("Enabled", Kind.BOOL),
        Param(
            "ErrorPolicies",
            Kind.ENUM,
            "Microsoft.Exchange.Data.ErrorPolicies",
            ("Default", "DowngradeDnsFailures", "DowngradeCustomFailures", "UpgradeCustomFailures"),
        ),
        Param("Force", Kind.SWITCH),
        Param("ForceHELO", Kind.BOOL),
        Param("Fqdn", Kind.STRING, "Microsoft.Exchange.Data.Fqdn", nullable=True, convert=_fqdn),
        Param("IgnoreSTARTTLS", Kind.BOOL),
        Param("MaxMessageSize", Kind.STRING, "Microsoft.Exchange.Data.Unlimited", convert=_size),
        Param("Port", Kind.INT, minimum=0, maximum=65535),
        Param(
            "ProtocolLoggingLevel",
            Kind.ENUM,
            "Microsoft.Exchange.Data.ProtocolLoggingLevel",
            ("None", "Verbose"),
        ),
        Param("RequireTLS", Kind.BOOL),
        Param(
            "SmartHostAuthMechanism",
            Kind.ENUM,
            "Microsoft.Exchange.Data.Directory.SystemConfiguration.SmtpSendConnectorConfig"
            "+AuthMechanisms",
            MECHANISMS,
            numbers=_MECHANISM_CODES,
        ),
        Param(
            "SmartHosts",
            Kind.STRINGS,
            "Microsoft.Exchange.Data.SmartHost",
            nullable=True,
            convert=_smart_host,
        ),
        Param("SourceTransportServers", Kind.STRINGS, "Microsoft.Exchange.Data.ServerIdParameter"),
        Param(
            "TlsAuthLevel",
            Kind.ENUM,
            "Microsoft.Exchange.Data.TlsAuthLevel",
            ("EncryptionOnly", "CertificateValidation", "DomainValidation"),
            nullable=True,
        ),
        Param(
            "TlsCertificateName",
            Kind.STRING,
            "Microsoft.Exchange.Data.SmtpX509Identifier",
            nullable=True,
            convert=_certificate_name,
        ),
        Param(
            "TlsDomain",
            Kind.STRING,
            "Microsoft.Exchange.Data.SmtpDomainWithSubdomains",
            nullable=True,
            convert=_tls_domain,
        ),
    ),
    changes=True,
)
_QUEUE_TYPES_PARAM = "Microsoft.Exchange.Data.QueueViewerIncludesAndExcludes[]"
GET_QUEUE = Signature(
    "Get-Queue",
    (
        _IDENTITY,
        _FILTER,
        _SERVER,
        Param("Include", Kind.ENUMS, _QUEUE_TYPES_PARAM, QUEUE_INCLUDES),
        Param("Exclude", Kind.ENUMS, _QUEUE_TYPES_PARAM, QUEUE_INCLUDES),
        Param("ResultSize", Kind.STRING, "Microsoft.Exchange.Data.Unlimited"),
        Param("SortOrder", Kind.STRING),
    ),
)
RETRY_QUEUE = Signature(
    "Retry-Queue", (_IDENTITY, _FILTER, _SERVER, Param("Resubmit", Kind.BOOL)), changes=True
)
# Get-ExchangeCertificate [[-Identity] Server\Thumbprint] [-Thumbprint] [-Server]
# [-DomainController] (Microsoft's Get-ExchangeCertificate docs).
GET_EXCHANGE_CERTIFICATE = Signature(
    "Get-ExchangeCertificate", (_IDENTITY, _DC, _SERVER, Param("Thumbprint", Kind.STRING))
)
# Get-TransportService [[-Identity] Server] [-DomainController] (Microsoft's
# Get-TransportService docs).
GET_TRANSPORT_SERVICE = Signature("Get-TransportService", (_IDENTITY, _DC))


# --- the shell ------------------------------------------------------------------------------


class ExchangeShell:
    """One shell's command runner over the shared organisation."""

    def __init__(self, org: Organization, server: str | None = None) -> None:
        self.org = org
        self.server = server or org.local_server  # the server this shell runs on
        self._cmdlets: dict[str, tuple[Signature, Callable[..., list[LabObject]]]] = {
            sig.name.lower(): (sig, handler)
            for sig, handler in (
                (GET_SEND_CONNECTOR, self._get_send_connector),
                (SET_SEND_CONNECTOR, self._set_send_connector),
                (GET_QUEUE, self._get_queue),
                (RETRY_QUEUE, self._retry_queue),
                (GET_EXCHANGE_CERTIFICATE, self._get_exchange_certificate),
                (GET_TRANSPORT_SERVICE, self._get_transport_service),
            )
        }

    def invoke(
        self, call: CommandCall, pipeline_input: list[LabObject], host: HostSink
    ) -> list[LabObject]:
        found = self._cmdlets.get(call.name.strip().lower())
        if found is None:
            raise _command_not_found(call.name)
        signature, handler = found
        self.org.count_cmdlet(signature.name)
        bound = binding.bind(signature, call)
        try:
            return handler(signature, bound, pipeline_input, host)
        except CmdletError as error:
            if bound.get("ErrorAction") in ("SilentlyContinue", "Ignore"):
                return []
            raise error from None

    # --- Get-SendConnector ---------------------------------------------------------------------

    def _get_send_connector(
        self, sig: Signature, bound: dict[str, Any], _input: list[LabObject], _host: HostSink
    ) -> list[LabObject]:
        identity = bound.get("Identity")
        if identity is None:
            return [connector_object(c, self.org) for c in self.org.connectors()]
        text = _identity_text(identity)
        if any(ch in text for ch in "*?"):
            pattern = text.lower()
            return [
                connector_object(c, self.org)
                for c in self.org.connectors()
                if fnmatch.fnmatchcase(c.name.lower(), pattern)
            ]
        return [connector_object(self._find_connector(sig, text), self.org)]

    def _find_connector(self, sig: Signature, identity: str) -> Connector:
        connector = self.org.find_connector(identity)
        if connector is None:
            raise _not_found(sig, identity, self.server)
        return connector

    def _error(
        self,
        sig: Signature,
        message: str,
        error_id: str,
        exception_type: str,
        *,
        target: str | None = None,
        category: str = "NotSpecified",
    ) -> CmdletError:
        return _exchange_error(
            sig,
            message,
            error_id,
            exception_type,
            server=self.server,
            target=target,
            category=category,
        )

    # --- Get-ExchangeCertificate ---------------------------------------------------------------

    def _get_exchange_certificate(
        self, sig: Signature, bound: dict[str, Any], _input: list[LabObject], _host: HostSink
    ) -> list[LabObject]:
        identity = bound.get("Identity")
        server, thumbprint = self.server, bound.get("Thumbprint")
        if identity is not None:
            text = _identity_text(identity)
            named, sep, rest = text.rpartition("\\")
            server, thumbprint = (named, rest) if sep else (server, text)
        if bound.get("Server"):
            server = bound["Server"]
        server = self._server_name(sig, server)
        certificates = self.org.certificates(server)
        if thumbprint:
            certificates = [c for c in certificates if c.thumbprint.lower() == thumbprint.lower()]
            if not certificates:
                raise _not_found(sig, thumbprint, self.server)
        return [certificate_object(c) for c in certificates]

    # --- Get-TransportService ------------------------------------------------------------------

    def _get_transport_service(
        self, sig: Signature, bound: dict[str, Any], _input: list[LabObject], _host: HostSink
    ) -> list[LabObject]:
        names = [s.name for s in self.org.servers]
        if bound.get("Identity") is not None:
            names = [self._server_name(sig, _identity_text(bound["Identity"]))]
        return [transport_service_object(name, self.org.server_fqdn(name)) for name in names]

    # --- Set-SendConnector ---------------------------------------------------------------------

    def _set_send_connector(
        self, sig: Signature, bound: dict[str, Any], pipeline: list[LabObject], host: HostSink
    ) -> list[LabObject]:
        identities = _identities(sig, bound, pipeline, "Guid")
        changes = {SET_FIELDS[name]: value for name, value in bound.items() if name in SET_FIELDS}
        if "source_transport_servers" in changes:
            changes["source_transport_servers"] = self._servers(
                sig, changes["source_transport_servers"]
            )
        for identity in identities:
            current = self._find_connector(sig, identity)
            sources = changes.get("source_transport_servers", current.source_transport_servers)
            try:
                updated = apply_changes(
                    current, changes, smtp_certificates=self._smtp_certificates(sources)
                )
            except RuleViolation as violation:
                raise self._error(
                    sig,
                    violation.message,
                    violation.error_id,
                    VALIDATION_EXCEPTION,
                    target=current.name,
                ) from None
            action = f'Configuring Send connector "{current.name}".'
            if not _should_process(sig, bound, action, host):
                continue
            if needs_force(current, changes) and not bound.get("Force"):
                raise _should_continue_failed(sig, current.name)
            self.org.replace_connector(updated)
        return []

    def _smtp_certificates(self, servers: list[str]) -> list[str]:
        return [
            f"<I>{cert.issuer}<S>{cert.subject}"
            for server in servers
            for cert in self.org.certificates(server)
            if cert.smtp_enabled
        ]

    def _servers(self, sig: Signature, names: list[str]) -> list[str]:
        known = {s.name.lower(): s.name for s in self.org.servers}
        known |= {s.fqdn.lower(): s.name for s in self.org.servers}
        result = []
        for name in names:
            if name.lower() not in known:
                raise _not_found(sig, name, self.server)
            result.append(known[name.lower()])
        return result

    # --- Get-Queue / Retry-Queue ---------------------------------------------------------------

    def _get_queue(
        self, sig: Signature, bound: dict[str, Any], _input: list[LabObject], _host: HostSink
    ) -> list[LabObject]:
        if "Identity" in bound and "Filter" in bound:
            raise binding.ambiguous_parameter_set(sig)
        objects = [queue_object(q, self.org) for q in self._select_queues(sig, bound)]
        include, exclude = bound.get("Include") or [], bound.get("Exclude") or []
        if include:
            objects = [o for o in objects if _queue_matches(o, include)]
        if exclude:
            objects = [o for o in objects if not _queue_matches(o, exclude)]
        return objects

    def _retry_queue(
        self, sig: Signature, bound: dict[str, Any], pipeline: list[LabObject], host: HostSink
    ) -> list[LabObject]:
        if "Identity" in bound and "Filter" in bound:
            raise binding.ambiguous_parameter_set(sig)
        if "Identity" not in bound and "Filter" not in bound:
            queues = [self._find_queue(sig, i) for i in _identities(sig, bound, pipeline)]
        else:
            queues = self._select_queues(sig, bound)
        for queue in queues:
            if _should_process(sig, bound, f'Retrying queue "{queue.identity}".', host):
                self.org.retry_queue(queue.identity)
        return []

    def _select_queues(self, sig: Signature, bound: dict[str, Any]) -> list[Queue]:
        if "Identity" in bound and "Server" in bound:
            raise binding.ambiguous_parameter_set(sig)  # Identity and Server sets (docs)
        if "Identity" in bound:
            return [self._find_queue(sig, _identity_text(bound["Identity"]))]
        server = self._server_name(sig, bound.get("Server") or self.server)
        queues = [q for q in self.org.queues() if q.server.lower() == server.lower()]
        if "Filter" in bound:
            test = parse_queue_filter(sig, bound["Filter"])
            queues = [q for q in queues if test(queue_object(q, self.org).properties)]
        return queues

    def _server_name(self, sig: Signature, text: str) -> str:
        """A ServerIdParameter (name or FQDN) as the server's name, or not found."""
        key = text.strip().lower()
        for server in self.org.servers:
            if key in (server.name.lower(), server.fqdn.lower()):
                return server.name
        raise _not_found(sig, text, self.server)

    def _find_queue(self, sig: Signature, identity: str) -> Queue:
        server, sep, rest = identity.strip().rpartition("\\")
        server = server if sep else self.server
        for queue in self.org.queues():
            if queue.server.lower() != server.split(".")[0].lower():
                continue
            next_hop = queue_object(queue, self.org).properties["NextHopDomain"]
            if rest == str(queue.number) or rest.lower() == str(next_hop).lower():
                return queue
        raise self._error(
            sig,
            f"The queue {identity} couldn't be found on {server}.",
            "QueueNotFound",
            NOT_FOUND_EXCEPTION,
            target=identity,
            category="ObjectNotFound",
        )


# --- objects as Exchange returns them ---------------------------------------------------------


def connector_object(connector: Connector, org: Organization) -> LabObject:
    """Get-SendConnector's object. Multi-valued properties carry their Exchange element
    types; the credential, enums and AD ids are flattened by ``wire`` as Exchange's
    serializer does (the relay user name never leaves the server)."""
    properties: dict[str, Any] = {
        "AddressSpaces": MultiValued.of(_ADDRESS_SPACE, connector.address_spaces),
        "AuthenticationCredential": connector.credential,
        "CloudServicesMailEnabled": False,
        "Comment": connector.comment,
        "ConnectedDomains": MultiValued.of("Microsoft.Exchange.Data.ConnectedDomain", ()),
        "ConnectionInactivityTimeOut": connector.connection_inactivity_timeout,
        "DNSRoutingEnabled": connector.dns_routing_enabled,
        "DomainSecureEnabled": connector.domain_secure_enabled,
        "Enabled": connector.enabled,
        "ErrorPolicies": connector.error_policies,
        "ForceHELO": connector.force_helo,
        "Fqdn": connector.fqdn,
        "FrontendProxyEnabled": False,
        "HomeMTA": "Microsoft MTA",
        "HomeMtaServerId": connector.source_transport_servers[0]
        if connector.source_transport_servers
        else None,
        "Identity": connector.name,
        "IgnoreSTARTTLS": connector.ignore_starttls,
        "IsScopedConnector": False,
        "IsSmtpConnector": True,
        "MaxMessageSize": connector.max_message_size,
        "Name": connector.name,
        "Port": connector.port,
        "ProtocolLoggingLevel": connector.protocol_logging_level,
        "RequireOorg": False,
        "RequireTLS": connector.require_tls,
        "SmartHostAuthMechanism": connector.smart_host_auth_mechanism,
        "SmartHosts": MultiValued.of("Microsoft.Exchange.Data.SmartHost", connector.smart_hosts),
        "SmartHostsString": ",".join(connector.smart_hosts),
        "SmtpMaxMessagesPerConnection": 20,
        "SourceIPAddress": "0.0.0.0",  # noqa: S104 - Exchange's "any local address" default
        "SourceRoutingGroup": "Exchange Routing Group (DWBGZMFD01QNBJR)",
        "SourceTransportServers": MultiValued.of(
            _AD_OBJECT_ID, connector.source_transport_servers, ad=True
        ),
        "TlsAuthLevel": connector.tls_auth_level,
        "TlsCertificateName": connector.tls_certificate_name,
        "TlsDomain": connector.tls_domain,
        "UseExternalDNSServersEnabled": False,
        "AdminDisplayName": None,
        "ExchangeVersion": "0.1 (8.0.535.0)",
        "DistinguishedName": f"CN={connector.name},{_CONFIG_DN}",
        "Guid": Guid(connector.guid),
        "ObjectCategory": f"{org.domain}/Configuration/Schema/ms-Exch-Routing-SMTP-Connector",
        "ObjectClass": ["top", "msExchRoutingSMTPConnector"],
        "WhenChanged": connector.when_changed,
        "WhenChangedUTC": connector.when_changed.astimezone(datetime.UTC),
        "OrganizationId": "",
        "OriginatingServer": DOMAIN_CONTROLLER,
        "IsValid": True,
        "ObjectState": "Unchanged",
    }
    return LabObject(list(CONNECTOR_TYPES), properties, connector.name)


def queue_object(queue: Queue, org: Organization) -> LabObject:
    connector = next((c for c in org.connectors() if c.guid == queue.connector_guid), None)
    smart_host = connector is not None and not connector.dns_routing_enabled
    delivery = "SmartHostConnectorDelivery" if smart_host else "DnsConnectorDelivery"
    # NextHopDomain of a smart-host queue: the smart hosts joined with "," (IPs bracketed as
    # stored), exchange-notes.md "Transport behaviour that the lab must copy".
    next_hop = (
        ",".join(connector.smart_hosts) if smart_host and connector else queue.next_hop_domain
    )
    properties: dict[str, Any] = {
        "Identity": queue.identity,
        "DeliveryType": delivery,
        "NextHopDomain": next_hop,
        "TlsDomain": "",
        "NextHopConnector": Guid(queue.connector_guid),
        "Status": queue.status,
        "MessageCount": len(queue.messages),
        "LastError": queue.last_error,
        "RetryCount": queue.retry_count,
        "LastRetryTime": queue.last_retry_time,
        "NextRetryTime": queue.next_retry_time,
        "FirstRetryTime": queue.first_retry_time,
        "DeferredMessageCount": 0,
        "LockedMessageCount": 0,
        "IncomingRate": 0.0,  # rates are doubles
        "OutgoingRate": 0.0,
        "Velocity": 0.0,
        "NextHopCategory": "External",
        "RiskLevel": "Normal",
        "OutboundIPPool": 0,
        "QueueIdentity": queue.identity,
    }
    return LabObject(list(QUEUE_TYPES), properties, queue.identity)


def certificate_object(cert: ExchangeCertificate) -> LabObject:
    """An ExchangeCertificate with the properties Microsoft's Get-ExchangeCertificate docs
    show; ``Services`` as Exchange's flags text ("IMAP, POP, IIS, SMTP" or "None")."""
    properties: dict[str, Any] = {
        "Identity": f"{cert.server}\\{cert.thumbprint}",
        "Thumbprint": cert.thumbprint,
        "Subject": cert.subject,
        "Issuer": cert.issuer,
        "Services": cert.services,
        "NotBefore": cert.not_before,
        "NotAfter": cert.not_after,
        "CertificateDomains": MultiValued.of(
            "Microsoft.Exchange.Data.SmtpDomainWithSubdomains", cert.certificate_domains
        ),
        "FriendlyName": cert.friendly_name,
        "IsSelfSigned": cert.issuer == cert.subject,
        "HasPrivateKey": True,
        "Status": "Valid",
    }
    return LabObject(list(CERTIFICATE_TYPES), properties, cert.thumbprint)


TRANSPORT_SERVICE_TYPES = [
    "Microsoft.Exchange.Data.Directory.Management.TransportServer",
    "Microsoft.Exchange.Data.Directory.ADPresentationObject",
    "Microsoft.Exchange.Data.ConfigurableObject",
]
_LOGS = r"C:\Program Files\Microsoft\Exchange Server\V15\TransportRoles\Logs\Hub"


def transport_service_object(name: str, fqdn: str) -> LabObject:
    """Get-TransportService's object with the log settings of Microsoft's
    Set-TransportService docs at their defaults (SendProtocolLogMaxAge 30 days, directory 250
    MB, file 10 MB); SendProtocolLogPath as the lab's protocol log serves it."""

    properties: dict[str, Any] = {
        "Name": name,
        "Identity": name,
        "Fqdn": fqdn,
        "SendProtocolLogPath": SEND_LOG_PATH,
        "SendProtocolLogMaxAge": "30.00:00:00",
        "SendProtocolLogMaxDirectorySize": "250 MB (262,144,000 bytes)",
        "SendProtocolLogMaxFileSize": "10 MB (10,485,760 bytes)",
        "ReceiveProtocolLogPath": _LOGS + r"\ProtocolLog\SmtpReceive",
        "ConnectivityLogEnabled": True,
        "ConnectivityLogPath": _LOGS + r"\Connectivity",
        "MessageTrackingLogEnabled": True,
        "IntraOrgConnectorProtocolLoggingLevel": "None",
    }
    return LabObject(list(TRANSPORT_SERVICE_TYPES), properties, name)


def _queue_matches(obj: LabObject, kinds: list[str]) -> bool:
    props = obj.properties
    for kind in kinds:
        if kind == "Empty" and props["MessageCount"] == 0:
            return True
        if kind == props["NextHopCategory"] or kind == props["DeliveryType"]:
            return True
    return False


# --- Get-Queue -Filter ------------------------------------------------------------------------

_CLAUSE = re.compile(
    r"""\s*(?P<prop>[A-Za-z]+)\s+-(?P<op>eq|ne|gt|ge|lt|le|like|notlike)\s+
    (?P<value>'(?:[^']|'')*'|"[^"]*"|[^\s'"]+)\s*""",
    re.IGNORECASE | re.VERBOSE,
)
_FILTERABLE = (
    "Identity",
    "DeliveryType",
    "NextHopDomain",
    "NextHopConnector",
    "Status",
    "MessageCount",
    "LastError",
    "RetryCount",
    "NextHopCategory",
)


def parse_queue_filter(sig: Signature, text: str) -> Callable[[dict[str, Any]], bool]:
    """Exchange's queue filter: clauses ``Property -op value`` joined with ``-and``."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    clauses = []
    for part in re.split(r"\s-and\s", body, flags=re.IGNORECASE):
        match = _CLAUSE.fullmatch(part)
        prop = match and next((p for p in _FILTERABLE if p.lower() == match["prop"].lower()), None)
        if not match or prop is None:
            raise CmdletError(
                message=(
                    "Cannot bind parameter 'Filter' to the target. Exception setting \"Filter\": "
                    f'"Invalid filter syntax. For a description of the filter parameter syntax '
                    f'see the command help. "{text}" at position 1."'
                ),
                error_id=f"ParameterBindingFailed,{sig.name}",
                category="InvalidArgument",
                exception_type=binding.BINDING_EXCEPTION,
            )
        raw = match["value"]
        if raw[0] in "'\"":
            raw = raw[1:-1].replace("''", "'") if raw[0] == "'" else raw[1:-1]
        clauses.append((prop, match["op"].lower(), raw))
    return lambda props: all(_compare(props[p], op, v) for p, op, v in clauses)


def _compare(actual: Any, op: str, wanted: str) -> bool:
    if isinstance(actual, int) and not isinstance(actual, bool) and wanted.lstrip("-").isdigit():
        left: Any = actual
        right: Any = int(wanted)
    else:
        left, right = str(actual or "").lower(), wanted.lower()
    if op in ("like", "notlike"):
        return fnmatch.fnmatchcase(str(left), str(right)) == (op == "like")
    return {
        "eq": left == right,
        "ne": left != right,
        "gt": left > right,
        "ge": left >= right,
        "lt": left < right,
        "le": left <= right,
    }[op]


# --- helpers ----------------------------------------------------------------------------------


def _identity_text(value: Any) -> str:
    if isinstance(value, LabObject):
        return str(value.properties.get("Guid") or value.properties.get("Identity"))
    if isinstance(value, list) and len(value) == 1:
        return _identity_text(value[0])
    return str(value)


def _identities(
    sig: Signature, bound: dict[str, Any], pipeline: list[LabObject], key: str = "Identity"
) -> list[str]:
    """-Identity, or the objects piped in from the previous command of the pipeline."""
    if "Identity" in bound:
        return [_identity_text(bound["Identity"])]
    if pipeline:
        return [str(obj.properties.get(key) or obj.to_string) for obj in pipeline]
    raise binding.missing_mandatory(sig, ["Identity"])


def _should_process(sig: Signature, bound: dict[str, Any], action: str, host: HostSink) -> bool:
    """-WhatIf writes Exchange's "What if:" line to the host and changes nothing; -Confirm
    asks, which no remote client of the lab can answer."""
    if bound.get("WhatIf"):
        host.write_host(f"What if: {action}")
        return False
    if bound.get("Confirm"):
        raise CmdletError(
            message=(
                "A command that prompts the user failed because the host program or the "
                "command type does not support user interaction. The host was attempting to "
                "request confirmation with the following message: Are you sure you want to "
                f"perform this action?\n{action}"
            ),
            error_id=f"HostFunctionNotImplemented,{_NAMESPACE[sig.name]}",
            category="NotImplemented",
            exception_type="System.Management.Automation.Host.HostException",
        )
    return True


def _command_not_found(name: str) -> CmdletError:
    return CmdletError(
        message=(
            f"The term '{name}' is not recognized as the name of a cmdlet, function, script "
            "file, or operable program. Check the spelling of the name, or if a path was "
            "included, verify that the path is correct and try again."
        ),
        error_id="CommandNotFoundException",
        category="ObjectNotFound",
        exception_type="System.Management.Automation.CommandNotFoundException",
        target=name,
    )


def _not_found(sig: Signature, identity: str, server: str) -> CmdletError:
    return _exchange_error(
        sig,
        f"The operation couldn't be performed because object '{identity}' couldn't be found "
        f"on '{DOMAIN_CONTROLLER}'.",
        "ManagementObjectNotFound",
        NOT_FOUND_EXCEPTION,
        server=server,
        target=identity,
    )


def _should_continue_failed(sig: Signature, name: str) -> CmdletError:
    """An EdgeSync connector's SmartHosts/AddressSpaces change asks ShouldContinue, which a
    remote client cannot answer and -Confirm:$false does not skip; only -Force does
    (exchange-notes.md, "Transport behaviour that the lab must copy"). The question's text is
    the lab's wording; the error around it is PowerShell's for a prompt a host cannot show."""
    return CmdletError(
        message=(
            "A command that prompts the user failed because the host program or the command "
            "type does not support user interaction. The host was attempting to request "
            f'confirmation with the following message: Send connector "{name}" is maintained '
            "by EdgeSync; changes made here are overwritten at the next synchronization. Do "
            "you want to continue? Use -Force to make the change without this question."
        ),
        error_id=f"HostFunctionNotImplemented,{_NAMESPACE[sig.name]}",
        category="NotImplemented",
        exception_type="System.Management.Automation.Host.HostException",
        target=name,
    )


def _exchange_error(
    sig: Signature,
    message: str,
    error_id: str,
    exception_type: str,
    *,
    server: str,
    target: str | None = None,
    category: str = "NotSpecified",
) -> CmdletError:
    """An error as Exchange's remote tasks report it: the FullyQualifiedErrorId names the
    session's server, the request and the failure category before a hexadecimal id and the
    task class (exchange-notes.md, "What comes back over remote PowerShell")."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%m/%d/%Y %H:%M:%S")
    short = exception_type.rsplit(".", 1)[-1]
    prefix = f"[Server={server},RequestId={uuid.uuid4()},TimeStamp={stamp}] "
    prefix += f"[FailureCategory=Cmdlet-{short}] "
    return CmdletError(
        message=message,
        error_id=f"{prefix}{ERROR_HEX_IDS[error_id]},{_NAMESPACE[sig.name]}",
        category=category,
        exception_type=exception_type,
        target=target,
    )
