"""The Send connector as Exchange describes it: properties, enums and their wire names.

Pre-flight rules (what Set-SendConnector would refuse or silently mangle) live in
``remediate.core.preflight``; the lab has its own, independent implementation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import Enum, StrEnum
from typing import Any, TypeVar


class AuthMechanism(StrEnum):
    """SmartHostAuthMechanism values (the Exchange enum's numeric value in ``code``)."""

    NONE = "None"
    BASIC_AUTH = "BasicAuth"
    BASIC_AUTH_REQUIRE_TLS = "BasicAuthRequireTLS"
    EXCHANGE_SERVER = "ExchangeServer"
    EXTERNAL_AUTHORITATIVE = "ExternalAuthoritative"

    @property
    def code(self) -> int:
        return _MECHANISM_CODES[self]

    @property
    def needs_credential(self) -> bool:
        return self in (AuthMechanism.BASIC_AUTH, AuthMechanism.BASIC_AUTH_REQUIRE_TLS)

    @classmethod
    def parse(cls, text: str) -> AuthMechanism:
        """Accept the Exchange name case-insensitively, or its numeric value."""
        return _parse_enum(cls, text, {str(v): k for k, v in _MECHANISM_CODES.items()})

    def __str__(self) -> str:
        return self.value


_MECHANISM_CODES = {
    AuthMechanism.NONE: 0,
    AuthMechanism.BASIC_AUTH: 2,
    AuthMechanism.BASIC_AUTH_REQUIRE_TLS: 4,
    AuthMechanism.EXCHANGE_SERVER: 8,
    AuthMechanism.EXTERNAL_AUTHORITATIVE: 16,
}


class TlsAuthLevel(StrEnum):
    ENCRYPTION_ONLY = "EncryptionOnly"
    CERTIFICATE_VALIDATION = "CertificateValidation"
    DOMAIN_VALIDATION = "DomainValidation"

    @classmethod
    def parse(cls, text: str) -> TlsAuthLevel:
        return _parse_enum(cls, text, {})

    def __str__(self) -> str:
        return self.value


class ProtocolLoggingLevel(StrEnum):
    NONE = "None"
    VERBOSE = "Verbose"

    @classmethod
    def parse(cls, text: str) -> ProtocolLoggingLevel:
        return _parse_enum(cls, text, {})

    def __str__(self) -> str:
        return self.value


_E = TypeVar("_E", bound=StrEnum)


def _parse_enum(cls: type[_E], text: str, aliases: Mapping[str, _E]) -> _E:
    cleaned = str(text).strip()
    if cleaned in aliases:
        return aliases[cleaned]
    for member in cls:
        if member.value.lower() == cleaned.lower():
            return member
    allowed = ", ".join(m.value for m in cls)
    raise ValueError(f"{text!r} is not one of {allowed}")


class CredentialState(StrEnum):
    """What can be known of a connector's AuthenticationCredential over remote PowerShell."""

    SET = "set"
    NOT_SET = "not set"
    UNKNOWN = "unknown"

    @property
    def is_set(self) -> bool:
        return self is CredentialState.SET

    def __str__(self) -> str:
        return self.value


def credential_state(raw: Any) -> CredentialState:
    """AuthenticationCredential as read: ``<Nil>`` or empty is not set; Exchange's flattened
    ``System.Management.Automation.PSCredential`` (or any other value, such as a user name
    from an older shape or a backup) is set; the tool's own words read back as themselves."""
    if raw is None or raw == "" or raw == [] or raw == {}:
        return CredentialState.NOT_SET
    if isinstance(raw, CredentialState):
        return raw
    if isinstance(raw, str):
        for state in CredentialState:
            if raw.strip().lower() == state.value:
                return state
    return CredentialState.SET


def smart_host_key(host: str) -> str:
    """A smart host as compared: Exchange writes an IP smart host bracketed (``[10.0.0.5]``)
    and names are case-insensitive, so ``10.0.0.5`` and ``[10.0.0.5]`` are one host."""
    name = host.strip()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name.rstrip(".").lower()


def same_smart_hosts(left: tuple[str, ...], right: tuple[str, ...]) -> bool:
    return [smart_host_key(h) for h in left] == [smart_host_key(h) for h in right]


@dataclass(frozen=True)
class SendConnector:
    """One Send connector as Get-SendConnector reports it (never with a password).

    ``credential`` says whether AuthenticationCredential is set: Exchange never sends the
    relay user name back (only the credential's type name), so the tool knows no more.
    """

    name: str
    guid: str = ""
    smart_hosts: tuple[str, ...] = ()
    dns_routing_enabled: bool = True
    smart_host_auth_mechanism: AuthMechanism = AuthMechanism.NONE
    credential: CredentialState = CredentialState.NOT_SET
    port: int = 25
    require_tls: bool = False
    tls_auth_level: TlsAuthLevel | None = None
    tls_domain: str | None = None
    tls_certificate_name: str | None = None
    ignore_starttls: bool = False
    enabled: bool = True
    source_transport_servers: tuple[str, ...] = ()
    address_spaces: tuple[str, ...] = ("SMTP:*;1",)
    protocol_logging_level: ProtocolLoggingLevel = ProtocolLoggingLevel.NONE
    force_helo: bool = False
    fqdn: str | None = None
    max_message_size: str | None = None
    connection_inactivity_timeout: str | None = None
    error_policies: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-able dict keyed by Exchange property names (for backups and --json)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Enum):
                value = value.value
            elif isinstance(value, tuple):
                value = list(value)
            out[PROPERTY_NAMES[f.name]] = value
        return out

    @classmethod
    def from_properties(cls, props: Mapping[str, Any]) -> SendConnector:
        """Build from Exchange property names (deserialized object or backup JSON)."""
        by_property = {v.lower(): k for k, v in PROPERTY_NAMES.items()}
        values: dict[str, Any] = {}
        for key, raw in props.items():
            attr = by_property.get(str(key).lower())
            if attr is None:
                continue
            values[attr] = _coerce(attr, raw)
        if "name" not in values:
            raise ValueError("connector record has no Name")
        values.setdefault("credential", CredentialState.UNKNOWN)
        return cls(**values)

    def replace(self, **changes: Any) -> SendConnector:
        data = asdict(self)
        data.update(changes)
        return SendConnector(**data)


PROPERTY_NAMES: dict[str, str] = {
    "name": "Name",
    "guid": "Guid",
    "smart_hosts": "SmartHosts",
    "dns_routing_enabled": "DNSRoutingEnabled",
    "smart_host_auth_mechanism": "SmartHostAuthMechanism",
    "credential": "AuthenticationCredential",
    "port": "Port",
    "require_tls": "RequireTLS",
    "tls_auth_level": "TlsAuthLevel",
    "tls_domain": "TlsDomain",
    "tls_certificate_name": "TlsCertificateName",
    "ignore_starttls": "IgnoreSTARTTLS",
    "enabled": "Enabled",
    "source_transport_servers": "SourceTransportServers",
    "address_spaces": "AddressSpaces",
    "protocol_logging_level": "ProtocolLoggingLevel",
    "force_helo": "ForceHELO",
    "fqdn": "Fqdn",
    "max_message_size": "MaxMessageSize",
    "connection_inactivity_timeout": "ConnectionInactivityTimeOut",
    "error_policies": "ErrorPolicies",
}
# Exchange property name -> SendConnector field (the planner, undo and the API look up by it)
ATTRIBUTE_NAMES: dict[str, str] = {prop: attr for attr, prop in PROPERTY_NAMES.items()}

_BOOL_FIELDS = {"dns_routing_enabled", "require_tls", "ignore_starttls", "enabled", "force_helo"}
_LIST_FIELDS = {"smart_hosts", "source_transport_servers", "address_spaces"}


def _coerce(attr: str, raw: Any) -> Any:
    if attr in _BOOL_FIELDS:
        if isinstance(raw, str):
            return raw.strip().lower() in ("true", "$true", "1", "yes")
        return bool(raw)
    if attr in _LIST_FIELDS:
        if raw is None:
            return ()
        if isinstance(raw, str):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if not isinstance(raw, list | tuple):
            raise ValueError(f"a list was expected, not {type(raw).__name__}")
        return tuple(str(x) for x in raw if x is not None)
    if attr == "port":
        return int(raw) if raw not in (None, "") else 25
    if attr == "smart_host_auth_mechanism":
        return AuthMechanism.parse(str(raw)) if raw not in (None, "") else AuthMechanism.NONE
    if attr == "tls_auth_level":
        return TlsAuthLevel.parse(str(raw)) if raw not in (None, "") else None
    if attr == "protocol_logging_level":
        if raw in (None, ""):
            return ProtocolLoggingLevel.NONE
        return ProtocolLoggingLevel.parse(str(raw))
    if attr == "credential":
        return credential_state(raw)
    return None if raw is None else str(raw)


@dataclass(frozen=True)
class ExchangeCertificate:
    """A certificate as Get-ExchangeCertificate reports it (Services: "IMAP, POP, SMTP")."""

    server: str
    thumbprint: str
    subject: str
    issuer: str
    services: str = ""

    @property
    def smtp_enabled(self) -> bool:
        return "smtp" in {s.strip().lower() for s in self.services.split(",")}


def certificate_name_parts(name: str) -> tuple[str, str] | None:
    """TlsCertificateName ``<I>issuer<S>subject`` as (issuer, subject), or None."""
    if not name.startswith("<I>") or "<S>" not in name[3:]:
        return None
    issuer, _, subject = name[3:].partition("<S>")
    return issuer.strip(), subject.strip()


@dataclass(frozen=True)
class QueueInfo:
    """A smart-host delivery queue as Get-Queue reports it."""

    identity: str
    next_hop_domain: str = ""
    next_hop_connector: str = ""
    status: str = ""
    message_count: int = 0
    last_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def server(self) -> str:
        """The transport server holding the queue (``EX02\\5`` -> ``EX02``)."""
        server, sep, _number = self.identity.rpartition("\\")
        return server if sep else ""
