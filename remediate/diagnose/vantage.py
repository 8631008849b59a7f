"""Where reachability was checked, and what may be concluded from it.

The transport server's own view (``server_view``: Test-NetConnection and the Send protocol
log on the server that logged the event) comes first; this machine's DNS/TCP/banner checks
(``reachability``) are the fallback and a second opinion. A routing change (port, smart
hosts) is proposed only on the server's evidence: a workstation that cannot reach port 25 or
587, or resolves names differently, says nothing about the transport server's path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from remediate.core.errors import RemediateError
from remediate.core.last_error import Cause, parse_last_error
from remediate.core.plan import Parameter, Step, StepKind
from remediate.diagnose import sendlog
from remediate.diagnose.checks import Finding, Status
from remediate.diagnose.reachability import check_connector
from remediate.diagnose.server_view import ServerView, Unavailable, open_view

if TYPE_CHECKING:
    from remediate.core.exchange import QueueInfo, SendConnector
    from remediate.diagnose.events import EventRecord
    from remediate.diagnose.reachability import HostCheck
    from remediate.diagnose.sendlog import Session as LogSession
    from remediate.diagnose.server_view import ServerView, TcpCheck
    from remediate.remote.session import Session

HERE = "this machine"
LOG_SESSIONS = 3  # the connector's newest sessions explained


@dataclass
class Evidence:
    """Reachability from the server (when its view was had) and from this machine."""

    server: str | None = None
    server_checks: list[TcpCheck] = field(default_factory=list)
    here: list[HostCheck] = field(default_factory=list)
    note: str | None = None  # why the server's view is missing
    log_sessions: list[LogSession] = field(default_factory=list)
    log_note: str | None = None
    unchecked: list[str] = field(default_factory=list)  # source servers not checked
    events: list[EventRecord] = field(default_factory=list)  # the connector's, server's log

    @property
    def server_reaches(self) -> bool | None:
        """True when every smart host answers from the server; None without its view."""
        if not self.server_checks:
            return None
        return all(c.succeeded for c in self.server_checks)

    @property
    def routing_suspect(self) -> bool:
        """Routing (port, smart hosts) is suspect only when the server could not connect."""
        return self.server_reaches is False

    def stale_queues(self, queues: Sequence[QueueInfo]) -> list[QueueInfo]:
        """Queues whose LastError blames the connection (refused, timed out, DNS) while the
        server connects now: their error predates this check, a retry is what they need."""

        if self.server_reaches is not True:
            return []
        path = {Cause.CONNECTION_REFUSED, Cause.TIMEOUT, Cause.DNS, Cause.UNREACHABLE}
        return [q for q in queues if getattr(parse_last_error(q.last_error), "cause", None) in path]

    def findings(self) -> list[Finding]:
        """The server's checks and protocol log (this machine's checks are the caller's)."""
        found = [
            Finding(Status.OK if c.succeeded else Status.FAIL, f"from {c.server}", c.line())
            for c in self.server_checks
        ]
        if self.note:
            found.append(Finding(Status.WARN, "server view", self.note))
        for session in self.log_sessions:
            status = Status.OK if session.outcome == "delivered" else Status.FAIL
            found.append(Finding(status, f"protocol log on {self.server}", session.explanation()))
        if self.log_note:
            found.append(Finding(Status.WARN, f"protocol log on {self.server}", self.log_note))
        if self.unchecked:
            found.append(
                Finding(
                    Status.WARN,
                    "server view",
                    f"not checked from {', '.join(self.unchecked)} (also source transport "
                    "servers of this connector): run remediate there with --winrm-url",
                )
            )
        return found

    def verdict(self) -> str:
        """One line: what the evidence allows."""
        if self.server_reaches is True:
            failing_here = [c for c in self.here if not c.reachable]
            tail = (
                f"; the failure from {HERE} is this machine's own network path"
                if failing_here
                else ""
            )
            return (
                f"the smart host answers from {self.server}, the server that sends: the port "
                f"and smart hosts are right, so no routing change is proposed{tail}"
            )
        if self.server_reaches is False:
            return (
                f"the smart host does not answer from {self.server}, the server that sends: "
                "check the port, the smart hosts and the server's firewall or DNS"
                + (f" (it answers from {HERE})" if any(c.reachable for c in self.here) else "")
            )
        return (
            f"only {HERE} was checked: its result does not clear or condemn the transport "
            "server's path, so no routing change is proposed on it"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "server_checks": [c.to_json() for c in self.server_checks],
            "this_machine": [c.to_json() for c in self.here],
            "server_view_note": self.note,
            "verdict": self.verdict(),
            "routing_suspect": self.routing_suspect,
            "protocol_log": [
                {
                    "session": s.session_id,
                    "started": s.started,
                    "remote": s.remote,
                    "outcome": str(s.outcome),
                    "offered": list(s.offered),
                    "failed_reply": s.failed_reply or None,
                    "explanation": s.explanation(),
                }
                for s in self.log_sessions
            ],
            "protocol_log_note": self.log_note,
            "unchecked_servers": list(self.unchecked),
        }


def gather(
    exchange: Session,
    password: str | None,
    connector: SendConnector,
    *,
    warn: Callable[[str], None],
    winrm_url: str | None = None,
    here: bool = True,
    timeout: float = 5.0,
    events: bool = False,
) -> Evidence:
    """The server's view of ``connector`` (when its WinRM endpoint can be used) and this
    machine's checks; with ``events`` also the connector's 2016/2002 events in the server's
    Application log."""

    evidence = Evidence()
    if here:
        evidence.here = check_connector(connector, timeout=timeout)
    if connector.dns_routing_enabled or not connector.smart_hosts:
        return evidence
    opened = open_view(exchange.connection, password, warn, url=winrm_url)
    if isinstance(opened, Unavailable):
        evidence.note = opened.note
        return evidence
    assert isinstance(opened, ServerView)
    with opened as view:
        evidence.server = view.server
        evidence.unchecked = [
            s
            for s in connector.source_transport_servers
            if s.split(".")[0].lower() != view.server.split(".")[0].lower()
        ]
        evidence.server_checks = [view.test_tcp(h, connector.port) for h in connector.smart_hosts]
        read_protocol_log(exchange, view, connector, evidence)
        if events:
            evidence.events = [r for r in view.events() if r.ok and r.connector == connector.name]
    return evidence


def read_protocol_log(
    exchange: Session, view: ServerView, connector: SendConnector, evidence: Evidence
) -> None:
    """The connector's newest sessions in the server's Send protocol log, explained."""

    try:
        path = send_log_path(exchange, view.server)
        if path is None:
            evidence.log_note = (
                f"Get-TransportService -Identity {view.server} named no SendProtocolLogPath: "
                "the Send protocol log was not read"
            )
            return
        lines = view.protocol_log(path, connector.name)
    except RemediateError as exc:
        evidence.log_note = f"the Send protocol log could not be read ({exc.message})"
        return
    mechanism = str(connector.smart_host_auth_mechanism)
    found = sendlog.sessions(sendlog.parse(lines), connector.name, mechanism)
    evidence.log_sessions = found[-LOG_SESSIONS:]
    if not found:
        level = str(connector.protocol_logging_level)
        evidence.log_note = (
            f"no session of this connector in the newest Send protocol log (ProtocolLoggingLevel "
            f"{level}; Verbose records the next delivery)"
        )


def send_log_path(exchange: Session, server: str) -> str | None:
    """SendProtocolLogPath of ``server`` (Get-TransportService on the Exchange endpoint)."""

    step = Step(
        "Get-TransportService",
        (Parameter("Identity", server),),
        StepKind.READ,
        reason="the Send protocol log path",
        template="",
    )
    result = exchange.run(step)
    for item in result.output:
        if isinstance(item, dict) and item.get("SendProtocolLogPath"):
            return str(item["SendProtocolLogPath"])
    return None
