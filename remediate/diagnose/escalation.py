"""Event 2002 that nothing local explains: decide so, and write the escalation bundle.

``local_causes`` lists what this machine can see that explains the failure (connector
disabled, a smart host that does not resolve or does not answer, a LastError whose cause is a
setting: DNS, a refused port, credential, TLS, certificate...). A LastError that only says
the connection timed out or failed, or one the tool does not recognise, explains nothing
when the smart host answers from here: the path from the transport server is the suspect.

When it is empty, the failure needs people with more access (network team, smart-host
operator, Microsoft support) and ``write_bundle`` writes ONE JSON file
(``remediate-escalation/1``, mode 0600) with everything they ask for first:

- ``connector``: the Send connector's settings as Get-SendConnector reports them (the
  credential as its user name only; no password exists anywhere in the bundle)
- ``queues``: each smart-host queue with its LastError and the tool's reading of it
- ``events``: the related Application-log events given to the tool (intake), with repeats
- ``reachability``: DNS / TCP / banner checks, run from this machine (not the transport server)
- ``protocol_log``: where the send protocol log lives on each source transport server
- ``for_support``: what to attach when opening the case
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from remediate.core.exchange import QueueInfo, SendConnector
from remediate.core.filenames import file_name_part
from remediate.core.files import private_directory, write_file
from remediate.core.last_error import Cause, parse_last_error
from remediate.core.paths import state_dir
from remediate.core.queuejson import queue_json
from remediate.diagnose.events import EventGroup
from remediate.diagnose.reachability import FROM_HERE, HostCheck, Outcome

FORMAT = "remediate-escalation/1"
PROTOCOL_LOG = r"%ExchangeInstallPath%TransportRoles\Logs\Hub\ProtocolLog\SmtpSend"
FOR_SUPPORT = (
    "this file",
    "the send protocol log files (SmtpSend folder above) from each source transport server, "
    "covering the failed attempts, with verbose logging on",
    "the Application log (MSExchangeTransport) around the events, exported with wevtutil "
    "epl Application app.evtx",
    "Get-Queue -Identity <queue> | Format-List output and Get-Message -Queue <queue> counts",
    "Test-NetConnection <smart host> -Port <port> run on each source transport server",
    "the smart host operator's logs for the same time window",
)
# LastError causes that name no setting: with a smart host that answers, they need escalation.
_UNEXPLAINED_CAUSES = {Cause.TIMEOUT, Cause.UNREACHABLE, Cause.REJECTED, Cause.UNKNOWN}
_UNREACHABLE = {
    Outcome.NOT_RESOLVED,
    Outcome.REFUSED,
    Outcome.REJECTED,
    Outcome.NO_BANNER,
    Outcome.NO_ROUTE,
    Outcome.TIMED_OUT,
}


@dataclass(frozen=True)
class Escalation:
    connector: SendConnector
    queues: Sequence[QueueInfo] = ()
    events: Sequence[EventGroup] = ()
    reachability: Sequence[HostCheck] = ()
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    server_view: Mapping[str, Any] | None = None  # vantage.Evidence.to_json(): from the server

    def to_json(self) -> dict[str, Any]:
        servers = list(self.connector.source_transport_servers)
        return {
            "format": FORMAT,
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "summary": (
                f"Send connector '{self.connector.name}': event 2002 (connection failed) that "
                "the checks below do not explain locally"
            ),
            "connector": self.connector.to_json(),
            "queues": [queue_json(q) for q in self.queues],
            "events": [_event_json(g) for g in self.events],
            "reachability": {
                "checked_from": FROM_HERE,
                "hosts": [c.to_json() for c in self.reachability],
                "server_view": dict(self.server_view) if self.server_view else None,
            },
            "protocol_log": {
                "path": PROTOCOL_LOG,
                "servers": servers,
                "logging_level": str(self.connector.protocol_logging_level),
                "note": "on each source transport server; with ProtocolLoggingLevel None the "
                "connector writes nothing there: turn it to Verbose, retry, then read it",
            },
            "for_support": list(FOR_SUPPORT),
        }


def local_causes(
    connector: SendConnector, queues: Sequence[QueueInfo], checks: Sequence[HostCheck]
) -> list[str]:
    """What explains the failure on this side, one sentence each; [] means escalate."""
    found: list[str] = []
    if not connector.enabled:
        found.append("the connector is disabled: the transport does not send through it")
    for check in checks:
        if check.outcome in _UNREACHABLE:
            found.append(f"smart host {check.host} port {check.port}: {check.meaning}")
    for queue in queues:
        diagnosis = parse_last_error(queue.last_error)
        if diagnosis is not None and diagnosis.cause not in _UNEXPLAINED_CAUSES:
            found.append(f"queue {queue.identity}: {diagnosis.summary}")
    return found


def default_path(connector: str, environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/remediate/escalations/2002-<connector>-<UTC time>.json``."""

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    slug = file_name_part(connector)
    return state_dir(environ) / "escalations" / f"2002-{slug}-{stamp}.json"


def write_bundle(
    escalation: Escalation,
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """Write the bundle as JSON, mode 0600 (an existing file is replaced); return its path."""
    target = path or default_path(escalation.connector.name, environ)
    if path is None:
        private_directory(target.parent)
    text = json.dumps(escalation.to_json(), indent=2, default=str) + "\n"
    return write_file(target, text, what="the escalation file", private=True)


def _event_json(group: EventGroup) -> dict[str, Any]:
    record = group.record
    return {
        "event_id": record.event_id,
        "count": group.count,
        "first": group.first.isoformat() if group.first else None,
        "last": group.last.isoformat() if group.last else None,
        "connector": record.connector,
        "remote_endpoint": record.remote_endpoint,
        "status": record.status,
        "computer": record.computer,
        "message": record.raw,
        "sources": list(group.sources),
    }
