"""The seeded scenario: an organisation where events 2016 and 2002 are happening.

Two transport servers, EX01 (where the lab's shells run) and EX02. A connector has one queue
per source transport server (exchange-notes.md, "Transport behaviour"): queues on EX01 are
numbered from 3, on EX02 from 11, so a client that forgets the server cannot hit the right one
by chance.

Every connector state here is one Set-SendConnector produces from a default connector under
the lab's own rules (``rules.py``; tests/lab/test_seed_reachable.py replays them).

- "Outbound to Relay" (EX01 and EX02): SmartHostAuthMechanism ExchangeServer to the lab smart
  host, no credential, as an admin leaves it who picks "Exchange Server authentication" in the
  EAC for a third-party relay. The smart host offers STARTTLS and AUTH LOGIN but not Exchange's
  own extensions (X-ANONYMOUSTLS): the sending server cannot initialise its side of the
  authentication, event 2016 (%1 Unsupported, %3 ExchangeAuth, %5 the server's own identity
  EX01$ / EX02$), queues EX01\\4 (3 messages) and EX02\\12 (2 messages) in Retry. The event
  page's fix: a common mechanism with the correct credentials, and the credential re-entered:
  BasicAuthRequireTLS with the relay account drains both queues.
- "Outbound to Partner" (EX01 only): BasicAuth with the working relay credential, but its
  port is one where nothing listens: Retry (EX01\\5) with Winsock 10061 and event 2002. Fixed
  by the port alone (the lab smart host's port), which is what the 2002 playbook changes.
- "Internet Mail" (DNS routing; EX01\\3 and EX02\\11) and "Outbound to Archive" (BasicAuth,
  working credential; EX01\\6): healthy, empty queues.
- "EdgeSync - Default-First-Site-Name to Internet": DNS routing, healthy, no queue; its
  SmartHosts / AddressSpaces need -Force (EdgeSync connectors). The lab has no Edge server, so
  it is sourced on EX01.
- "Outbound to Branch" (added for 2002): its smart host name does not resolve. Queue EX01\\7 is
  in Retry with Exchange's DNS LastError (``SMTPSEND.DNS.NonExistentDomain``); as on Exchange,
  a name that does not resolve is a queue error, not event 2002. Fixed by correcting
  SmartHosts (to ``localhost``; the connector holds the relay credential).
- "Outbound to Legacy" (added for 2002): a disabled connector that still has a queue, EX01\\8.
  Exchange does not route through a disabled connector; its messages wait with the LastError
  Exchange gives an unroutable message (``A matching connector cannot be found to route the
  external recipient``), and Retry-Queue keeps it so. Fixed by enabling the connector.

Certificates (Get-ExchangeCertificate): on each server one enabled for "IMAP, POP, IIS, SMTP"
issued by the Contoso CA, and the self-signed WMSvc certificate with Services "None".

The relay account's password is random per seed.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
import uuid

from remediate.lab.api import LabCredential
from remediate.lab.model import (
    DOMAIN,
    RETRY_INTERVAL,
    AppEvent,
    Connector,
    ExchangeCertificate,
    OrgState,
    Queue,
    QueuedMessage,
    TransportServer,
    now,
)
from remediate.lab.transport import (
    DNS_FAILED,
    NO_MATCHING_CONNECTOR,
    REQUIRE_EXCHANGE_AUTH,
    EventDraft,
    event_2002,
    event_2016,
    winsock_error,
    wrap_last_error,
)

RELAY_USER = f"relay@{DOMAIN}"
SERVERS = ("EX01", "EX02")
RELAY = "Outbound to Relay"
PARTNER = "Outbound to Partner"
INTERNET = "Internet Mail"
ARCHIVE = "Outbound to Archive"
BRANCH = "Outbound to Branch"
LEGACY = "Outbound to Legacy"
EDGESYNC = "EdgeSync - Default-First-Site-Name to Internet"
UNRESOLVED_HOST = "relay.branch.invalid"
RELAY_MECHANISM = "ExchangeServer"  # the 2016 scenario's broken mechanism
CA_ISSUER = "CN=Contoso Issuing CA, DC=contoso, DC=lab"


def seed_state(*, smart_host: tuple[str, int], closed_port: int) -> OrgState:
    host, port = smart_host
    smart_host_name = "localhost" if host in ("127.0.0.1", "localhost") else host
    relay_password = secrets.token_urlsafe(18)
    servers = [TransportServer(name, f"{name}.{DOMAIN}") for name in SERVERS]
    both = list(SERVERS)
    relay_credential = LabCredential(RELAY_USER, relay_password)
    connectors = [
        Connector(INTERNET, _guid(), ["SMTP:*;1"], both),
        Connector(
            RELAY,
            _guid(),
            ["SMTP:tailspintoys.example;1"],
            both,
            dns_routing_enabled=False,
            smart_hosts=[smart_host_name],
            smart_host_auth_mechanism=RELAY_MECHANISM,
            port=port,
        ),
        Connector(
            PARTNER,
            _guid(),
            ["SMTP:fabrikam.example;1"],
            ["EX01"],
            dns_routing_enabled=False,
            smart_hosts=[smart_host_name],
            smart_host_auth_mechanism="BasicAuth",
            credential=relay_credential,
            port=closed_port,
        ),
        Connector(
            ARCHIVE,
            _guid(),
            ["SMTP:archive.contoso.example;1"],
            ["EX01"],
            dns_routing_enabled=False,
            smart_hosts=[smart_host_name],
            smart_host_auth_mechanism="BasicAuth",
            credential=relay_credential,
            port=port,
        ),
        Connector(
            BRANCH,
            _guid(),
            ["SMTP:branch.contoso.example;1"],
            ["EX01"],
            dns_routing_enabled=False,
            smart_hosts=[UNRESOLVED_HOST],
            smart_host_auth_mechanism="BasicAuth",
            credential=relay_credential,
            port=port,
        ),
        Connector(
            LEGACY,
            _guid(),
            ["SMTP:legacy.contoso.example;1"],
            ["EX01"],
            dns_routing_enabled=False,
            smart_hosts=[smart_host_name],
            smart_host_auth_mechanism="BasicAuth",
            credential=relay_credential,
            port=port,
            enabled=False,
        ),
        Connector(EDGESYNC, _guid(), ["SMTP:*;100"], ["EX01"]),
    ]
    by_name = {c.name: c for c in connectors}
    ip = "127.0.0.1" if smart_host_name == "localhost" else smart_host_name
    partner_endpoint = f"{ip}:{closed_port}"
    relay, partner = by_name[RELAY], by_name[PARTNER]
    at_relay, nowhere = (smart_host_name, ip), ("", "")
    queues = [
        Queue("EX01", 3, by_name[INTERNET].guid, "fabrikam.example"),
        _failing_queue(
            "EX01", 4, relay, "tailspintoys.example", 3, REQUIRE_EXCHANGE_AUTH, at_relay
        ),
        _failing_queue(
            "EX01",
            5,
            partner,
            "fabrikam.example",
            2,
            winsock_error(10061, partner_endpoint),
            at_relay,
        ),
        Queue("EX01", 6, by_name[ARCHIVE].guid, smart_host_name),
        _failing_queue(
            "EX01", 7, by_name[BRANCH], "branch.contoso.example", 2, DNS_FAILED, nowhere
        ),
        _failing_queue(
            "EX01", 8, by_name[LEGACY], "legacy.contoso.example", 2, NO_MATCHING_CONNECTOR, nowhere
        ),
        Queue("EX02", 11, by_name[INTERNET].guid, "fabrikam.example"),
        _failing_queue(
            "EX02", 12, relay, "tailspintoys.example", 2, REQUIRE_EXCHANGE_AUTH, at_relay
        ),
    ]
    drafts = [
        ("EX01", event_2016("Unsupported", RELAY, RELAY_MECHANISM, "SMTPSVC/localhost", "EX01$")),
        ("EX01", event_2002(PARTNER, partner_endpoint)),
        ("EX02", event_2016("Unsupported", RELAY, RELAY_MECHANISM, "SMTPSVC/localhost", "EX02$")),
    ]
    events = [
        _event(number, draft, f"{server}.{DOMAIN}")
        for number, (server, draft) in enumerate(drafts, start=1)
    ]
    return OrgState(
        servers=servers,
        connectors=connectors,
        queues=queues,
        events=events,
        relay_user=RELAY_USER,
        relay_password=relay_password,
        smart_host=smart_host,
        closed_port=closed_port,
        certificates=[cert for name in SERVERS for cert in _certificates(name)],
    )


def _certificates(server: str) -> list[ExchangeCertificate]:
    """One certificate enabled for SMTP (and IMAP, POP, IIS) from the Contoso CA, and the
    self-signed WMSvc certificate Exchange setup creates, enabled for no Exchange service."""
    fqdn = f"{server}.{DOMAIN}"
    issued = now().replace(hour=0, minute=0, second=0)
    wmsvc = f"CN=WMSvc-SHA2-{server}"
    return [
        ExchangeCertificate(
            server=server,
            thumbprint=_thumbprint(f"{server}-san"),
            subject=f"CN={fqdn}",
            issuer=CA_ISSUER,
            services="IMAP, POP, IIS, SMTP",
            not_before=issued - datetime.timedelta(days=200),
            not_after=issued + datetime.timedelta(days=530),
            certificate_domains=[fqdn, f"mail.{DOMAIN}", f"autodiscover.{DOMAIN}"],
            friendly_name="Contoso Exchange",
        ),
        ExchangeCertificate(
            server=server,
            thumbprint=_thumbprint(f"{server}-wmsvc"),
            subject=wmsvc,
            issuer=wmsvc,
            services="None",
            not_before=issued - datetime.timedelta(days=400),
            not_after=issued + datetime.timedelta(days=3250),
            certificate_domains=[f"WMSvc-SHA2-{server}"],
            friendly_name="WMSVC-SHA2",
        ),
    ]


def _thumbprint(seed: str) -> str:
    return hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest().upper()


EXTRA_PREFIX = "Bulk Relay"


def extra_connectors(
    count: int, *, smart_host: tuple[str, int], relay: LabCredential, existing: set[str]
) -> list[Connector]:
    """``count`` more healthy connectors for bulk runs and benchmarks ("Bulk Relay 001", ...):
    BasicAuth through the lab smart host with the relay account, on EX01, no queue. Names
    already present (a state file seeded before) are not added again."""
    host, port = smart_host
    smart_host_name = "localhost" if host in ("127.0.0.1", "localhost") else host
    names = [f"{EXTRA_PREFIX} {number:03d}" for number in range(1, count + 1)]
    return [
        Connector(
            name,
            _guid(),
            [f"SMTP:bulk{number:03d}.contoso.example;1"],
            ["EX01"],
            dns_routing_enabled=False,
            smart_hosts=[smart_host_name],
            smart_host_auth_mechanism="BasicAuth",
            credential=relay,
            port=port,
        )
        for number, name in enumerate(names, start=1)
        if name.lower() not in existing
    ]


def _guid() -> str:
    return str(uuid.uuid4())


def _failing_queue(
    server: str,
    number: int,
    connector: Connector,
    domain: str,
    count: int,
    reply: str,
    target: tuple[str, str],
) -> Queue:
    """A queue in Retry on ``server``; ``target`` the (FQDN, IP) last tried, for LastError's
    ``[{LRT};{LED};{FQDN};{IP}]`` wrapper (exchange-notes.md, "Queues")."""
    stamp = now()
    messages = [
        QueuedMessage(
            message_id=f"<{uuid.uuid4().hex}@{server}.{DOMAIN}>",
            sender=f"sales{index}@{DOMAIN}",
            recipients=[f"orders{index}@{domain}"],
            subject=f"Lab test message {index} via {connector.name} from {server}",
            body=f"Test message {index} queued on {server} for {connector.name}.\n",
        )
        for index in range(1, count + 1)
    ]
    return Queue(
        server,
        number,
        connector.guid,
        ",".join(connector.smart_hosts),
        messages=messages,
        status="Retry",
        last_error=wrap_last_error(reply, stamp, *target),
        retry_count=3,
        first_retry_time=stamp - 3 * RETRY_INTERVAL,
        last_retry_time=stamp,
        next_retry_time=stamp + RETRY_INTERVAL,
    )


def _event(record_id: int, draft: EventDraft, machine: str) -> AppEvent:
    return AppEvent(
        record_id=record_id,
        event_id=draft.event_id,
        source="MSExchangeTransport",
        category=draft.category,
        level=draft.level,
        machine=machine,
        message=draft.message,
        fields=list(draft.fields),
    )
