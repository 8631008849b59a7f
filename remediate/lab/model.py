"""The lab organisation's state as data: transport servers, Send connectors, queues,
certificates and Application-log events, as the cmdlets read and write them.

``org`` holds them behind a lock and saves them; ``seed`` makes the first state; ``transport``
delivers from them. Kept apart so those three import it and not each other.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, fields
from typing import Any

from remediate.core.errors import UsageError
from remediate.lab.api import LabCredential

STATE_VERSION = 2  # 2: certificates, DomainSecureEnabled, queues on EX02
DOMAIN = "contoso.lab"
DOMAIN_CONTROLLER = "DC1.contoso.lab"
RETRY_INTERVAL = datetime.timedelta(minutes=10)


class StateFileError(UsageError):
    """The state file cannot be read as a lab organisation."""


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _plain(obj: Any) -> dict[str, Any]:
    """A dataclass's fields as a dict, in field order, as ``dataclasses.asdict`` gives them
    for these flat records (lists copied one level, a nested LabCredential as a dict), without
    its deep copy of every value: the state is saved while changes arrive (issue 15)."""
    data: dict[str, Any] = {}
    for name in _field_names(type(obj)):
        value = getattr(obj, name)
        if isinstance(value, list):
            value = [_plain(v) if hasattr(v, "__dataclass_fields__") else v for v in value]
        elif isinstance(value, LabCredential):
            value = {"username": value.username, "password": value.password}
        data[name] = value
    return data


def _copied(obj: Any) -> dict[str, Any]:
    """The fields of a flat record (strings, numbers, dates, lists of strings, a
    LabCredential) for a copy as independent as ``copy.deepcopy`` makes, at a fraction of its
    cost: the organisation hands out copies on every read and change (issue 15)."""
    values = {name: getattr(obj, name) for name in _field_names(type(obj))}
    for name, value in values.items():
        if isinstance(value, list):
            values[name] = list(value)
        elif isinstance(value, LabCredential):
            values[name] = LabCredential(value.username, value.password)
    return values


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


@dataclass
class TransportServer:
    name: str
    fqdn: str


@dataclass
class Connector:
    """A Send connector with the properties of exchange-notes.md (Python names)."""

    name: str
    guid: str
    address_spaces: list[str]
    source_transport_servers: list[str]
    dns_routing_enabled: bool = True
    smart_hosts: list[str] = field(default_factory=list)
    smart_host_auth_mechanism: str = "None"
    credential: LabCredential | None = None
    port: int = 25
    require_tls: bool = False
    tls_auth_level: str | None = None
    tls_domain: str | None = None
    tls_certificate_name: str | None = None
    ignore_starttls: bool = False
    domain_secure_enabled: bool = False
    enabled: bool = True
    protocol_logging_level: str = "None"
    force_helo: bool = False
    fqdn: str | None = None
    max_message_size: str = "35 MB (36,700,160 bytes)"
    connection_inactivity_timeout: str = "00:10:00"
    error_policies: str = "Default"
    comment: str | None = None
    when_changed: datetime.datetime = field(default_factory=now)

    def to_json(self) -> dict[str, Any]:
        data = _plain(self)
        data["when_changed"] = self.when_changed.isoformat()
        return data

    def copy(self) -> Connector:
        """A copy as independent as ``copy.deepcopy`` makes (see ``_copied``)."""
        return Connector(**_copied(self))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Connector:
        values = dict(data)
        credential = values.pop("credential", None)
        values["credential"] = LabCredential(**credential) if credential else None
        values["when_changed"] = datetime.datetime.fromisoformat(values["when_changed"])
        return cls(**values)


@dataclass
class QueuedMessage:
    message_id: str
    sender: str
    recipients: list[str]
    subject: str
    body: str


@dataclass
class Queue:
    """A delivery queue on one transport server for one connector (``Server\\Number``)."""

    server: str
    number: int
    connector_guid: str
    next_hop_domain: str
    messages: list[QueuedMessage] = field(default_factory=list)
    status: str = "Ready"
    last_error: str = ""
    retry_count: int = 0
    first_retry_time: datetime.datetime | None = None
    last_retry_time: datetime.datetime | None = None
    next_retry_time: datetime.datetime | None = None

    @property
    def identity(self) -> str:
        return f"{self.server}\\{self.number}"

    def to_json(self) -> dict[str, Any]:
        data = _plain(self)
        for name in ("first_retry_time", "last_retry_time", "next_retry_time"):
            value = getattr(self, name)
            data[name] = value.isoformat() if value else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Queue:
        values = dict(data)
        values["messages"] = [QueuedMessage(**m) for m in values["messages"]]
        for name in ("first_retry_time", "last_retry_time", "next_retry_time"):
            if values.get(name):
                values[name] = datetime.datetime.fromisoformat(values[name])
        return cls(**values)


@dataclass
class ExchangeCertificate:
    """A certificate of one server as Get-ExchangeCertificate lists it (Microsoft's
    Get-ExchangeCertificate docs: Thumbprint, Subject, Issuer, Services, NotAfter,
    CertificateDomains). ``services`` is Exchange's flags text, e.g. ``IMAP, POP, IIS, SMTP``."""

    server: str
    thumbprint: str
    subject: str
    issuer: str
    services: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    certificate_domains: list[str]
    friendly_name: str = ""

    def copy(self) -> ExchangeCertificate:
        """A copy as independent as ``copy.deepcopy`` makes (see ``_copied``)."""
        return ExchangeCertificate(**_copied(self))

    @property
    def smtp_enabled(self) -> bool:
        return "SMTP" in [part.strip().upper() for part in self.services.split(",")]

    def to_json(self) -> dict[str, Any]:
        data = _plain(self)
        data["not_before"] = self.not_before.isoformat()
        data["not_after"] = self.not_after.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExchangeCertificate:
        values = dict(data)
        for name in ("not_before", "not_after"):
            values[name] = datetime.datetime.fromisoformat(values[name])
        return cls(**values)


@dataclass
class AppEvent:
    """One Application-log event as Exchange writes it (``fields`` are %1, %2, ...)."""

    record_id: int
    event_id: int
    source: str
    category: str
    level: str
    machine: str
    message: str
    fields: list[str]
    time_created: datetime.datetime = field(default_factory=now)

    def to_json(self) -> dict[str, Any]:
        data = _plain(self)
        data["time_created"] = self.time_created.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AppEvent:
        values = dict(data)
        values["time_created"] = datetime.datetime.fromisoformat(values["time_created"])
        return cls(**values)


@dataclass
class OrgState:
    """Everything that persists, as plain dataclasses."""

    servers: list[TransportServer]
    connectors: list[Connector]
    queues: list[Queue]
    events: list[AppEvent]
    relay_user: str
    relay_password: str
    smart_host: tuple[str, int]
    closed_port: int
    domain: str = DOMAIN
    certificates: list[ExchangeCertificate] = field(default_factory=list)

    def to_json(self, *, connectors: bool = True) -> dict[str, Any]:
        """The state file's content; ``connectors=False`` leaves their list None (``org``
        writes the JSON text of each connector itself, reusing it while one is unchanged)."""
        return {
            "version": STATE_VERSION,
            "domain": self.domain,
            "servers": [_plain(s) for s in self.servers],
            "connectors": [c.to_json() for c in self.connectors] if connectors else None,
            "queues": [q.to_json() for q in self.queues],
            "events": [e.to_json() for e in self.events],
            "certificates": [c.to_json() for c in self.certificates],
            "relay": {"username": self.relay_user, "password": self.relay_password},
            "smart_host": {"host": self.smart_host[0], "port": self.smart_host[1]},
            "closed_port": self.closed_port,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OrgState:
        if data.get("version") != STATE_VERSION:
            raise StateFileError(
                f"unsupported lab state version {data.get('version')!r} (this lab writes "
                f"{STATE_VERSION})",
                hint="start the lab with --reset to restore the seeded organisation",
            )
        return cls(
            servers=[TransportServer(**s) for s in data["servers"]],
            connectors=[Connector.from_json(c) for c in data["connectors"]],
            queues=[Queue.from_json(q) for q in data["queues"]],
            events=[AppEvent.from_json(e) for e in data["events"]],
            relay_user=data["relay"]["username"],
            relay_password=data["relay"]["password"],
            smart_host=(data["smart_host"]["host"], int(data["smart_host"]["port"])),
            closed_port=int(data["closed_port"]),
            domain=data["domain"],
            certificates=[ExchangeCertificate.from_json(c) for c in data["certificates"]],
        )
