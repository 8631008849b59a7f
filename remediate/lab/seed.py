"""The seeded scenario: an organisation where events 2016 and 2002 are happening.

- "Outbound to Relay": BasicAuthRequireTLS to the lab smart host, credential wiped (as after a
  round trip through DNS routing): its queue is in Retry with 454 4.7.0 and event 2016 is in
  the log. Fixed by re-entering the relay account's credential.
- "Outbound to Partner": BasicAuth with the working relay credential, but its port is one where
  nothing listens: Retry with Winsock 10061 and event 2002. Fixed by the port alone (the lab
  smart host's port), which is what the 2002 playbook changes.
- "Internet Mail" (DNS routing) and "Outbound to Archive" (BasicAuth, working credential):
  healthy, empty queues.
- "Outbound to Branch" (added for 2002): its smart host name does not resolve. Queue EX01\\7 is
  in Retry with Exchange's DNS LastError (``SMTPSEND.DNS.NonExistentDomain``); as on Exchange,
  a name that does not resolve is a queue error, not event 2002. Fixed by correcting
  SmartHosts (to ``localhost``; the connector holds the relay credential).
- "Outbound to Legacy" (added for 2002): a disabled connector that still has a queue, EX01\\8.
  Exchange does not route through a disabled connector; its messages wait with the LastError
  Exchange gives an unroutable message (``A matching connector cannot be found to route the
  external recipient``), and Retry-Queue keeps it so. Fixed by enabling the connector.

The relay account's password is random per seed.
"""

from __future__ import annotations

import secrets
import uuid

from remediate.lab.api import LabCredential
from remediate.lab.org import (
    DOMAIN,
    RETRY_INTERVAL,
    AppEvent,
    Connector,
    OrgState,
    Queue,
    QueuedMessage,
    TransportServer,
    now,
)
from remediate.lab.transport import (
    AUTH_TEMP_FAILURE,
    DNS_FAILED,
    NO_MATCHING_CONNECTOR,
    EventDraft,
    event_2002,
    event_2016,
    responded_with,
    winsock_error,
)

RELAY_USER = f"relay@{DOMAIN}"
SERVERS = ("EX01", "EX02")
RELAY = "Outbound to Relay"
PARTNER = "Outbound to Partner"
INTERNET = "Internet Mail"
ARCHIVE = "Outbound to Archive"
BRANCH = "Outbound to Branch"
LEGACY = "Outbound to Legacy"
UNRESOLVED_HOST = "relay.branch.invalid"


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
            smart_host_auth_mechanism="BasicAuthRequireTLS",
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
    ]
    by_name = {c.name: c for c in connectors}
    ip = "127.0.0.1" if smart_host_name == "localhost" else smart_host_name
    relay_endpoint, partner_endpoint = f"{ip}:{port}", f"{ip}:{closed_port}"
    queues = [
        Queue("EX01", 3, by_name[INTERNET].guid, "fabrikam.example"),
        _failing_queue(
            4,
            by_name[RELAY],
            "tailspintoys.example",
            3,
            responded_with(AUTH_TEMP_FAILURE, relay_endpoint),
        ),
        _failing_queue(
            5, by_name[PARTNER], "fabrikam.example", 2, winsock_error(10061, partner_endpoint)
        ),
        Queue("EX01", 6, by_name[ARCHIVE].guid, smart_host_name),
        _failing_queue(7, by_name[BRANCH], "branch.contoso.example", 2, DNS_FAILED),
        _failing_queue(8, by_name[LEGACY], "legacy.contoso.example", 2, NO_MATCHING_CONNECTOR),
    ]
    drafts = [
        event_2016(
            "UnknownCredentials", RELAY, "BasicAuthRequireTLS", "SMTPSVC/localhost", "EX01$"
        ),
        event_2002(PARTNER, partner_endpoint),
    ]
    events = [_event(number, draft) for number, draft in enumerate(drafts, start=1)]
    return OrgState(
        servers=servers,
        connectors=connectors,
        queues=queues,
        events=events,
        relay_user=RELAY_USER,
        relay_password=relay_password,
        smart_host=smart_host,
        closed_port=closed_port,
    )


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
    number: int, connector: Connector, domain: str, count: int, last_error: str
) -> Queue:
    stamp = now()
    messages = [
        QueuedMessage(
            message_id=f"<{uuid.uuid4().hex}@EX01.{DOMAIN}>",
            sender=f"sales{index}@{DOMAIN}",
            recipients=[f"orders{index}@{domain}"],
            subject=f"Lab test message {index} via {connector.name}",
            body=f"Test message {index} queued on EX01 for {connector.name}.\n",
        )
        for index in range(1, count + 1)
    ]
    return Queue(
        "EX01",
        number,
        connector.guid,
        ";".join(connector.smart_hosts),
        messages=messages,
        status="Retry",
        last_error=last_error,
        retry_count=3,
        first_retry_time=stamp - 3 * RETRY_INTERVAL,
        last_retry_time=stamp,
        next_retry_time=stamp + RETRY_INTERVAL,
    )


def _event(record_id: int, draft: EventDraft) -> AppEvent:
    return AppEvent(
        record_id=record_id,
        event_id=draft.event_id,
        source="MSExchangeTransport",
        category=draft.category,
        level=draft.level,
        machine=f"EX01.{DOMAIN}",
        message=draft.message,
        fields=list(draft.fields),
    )
