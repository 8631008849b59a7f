"""The diagnosis checks playbooks compose (``checks:`` in the YAML): name -> function.

Python supplies the checks, a playbook lists the ones it wants in order. Each one looks at
what the wizard has read (the connector, its queues, the event) through ``CheckContext``,
may print progress (``say``) and keep results for the fix (``notes``), and returns its
checklist lines. ``remediate.core.playbooks.CHECK_NAMES`` names exactly these (a test holds the
two equal), so loading a playbook needs none of the probes imported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from remediate.core.exchange import QueueInfo, SendConnector
from remediate.core.last_error import parse_last_error
from remediate.diagnose import checks as diagnosis
from remediate.diagnose.checks import Finding, Status
from remediate.diagnose.escalation import local_causes
from remediate.diagnose.events import EventGroup, EventRecord, group, parse_any
from remediate.diagnose.probe import probe
from remediate.diagnose.reachability import FROM_HERE, HostCheck
from remediate.diagnose.vantage import Evidence, gather

if TYPE_CHECKING:
    from remediate.core.env import Environment
    from remediate.remote.session import Session

PROBE_NOTE = (
    "The SMTP probe runs from THIS machine, not from the transport server: a firewall "
    "between the two can make the results differ."
)
REACHABILITY_TIMEOUT = 5.0
PROBE_TIMEOUT = 5


class _Options(Protocol):
    @property
    def probe_ca_file(self) -> Path | None: ...
    @property
    def event_text(self) -> str | None: ...
    @property
    def winrm_url(self) -> str | None: ...


class CheckContext(Protocol):
    """What a check may use (the wizard's context has all of it)."""

    connector: SendConnector | None
    queues: list[QueueInfo]
    event: EventRecord | None
    event_text: str | None
    prefill: dict[str, Any]
    hints: tuple[str, ...]
    notes: dict[str, Any]
    password: str | None  # the session's, for the server's WinRM endpoint (same login)

    @property
    def env(self) -> Environment: ...
    @property
    def options(self) -> _Options: ...
    @property
    def session(self) -> Session | None: ...
    def say(self, text: str = "") -> None: ...


Check = Callable[[CheckContext], list[Finding]]


def run(ctx: CheckContext, names: Sequence[str]) -> list[Finding]:
    """The checks ``names`` in order, their findings one after the other."""
    return [finding for name in names for finding in CHECKS[name](ctx)]


def _connector(ctx: CheckContext) -> SendConnector:
    assert ctx.connector is not None  # the wizard reads the connector before it diagnoses
    return ctx.connector


# --- checks ----------------------------------------------------------------------------------


def event_hints(ctx: CheckContext) -> list[Finding]:
    """What the event itself says (from ``remediate.diagnose.intake``)."""
    return [Finding(Status.WARN, "event", hint) for hint in ctx.hints]


def show_connector(ctx: CheckContext) -> list[Finding]:
    """The connector's routing and state, printed (no checklist line)."""
    c = _connector(ctx)
    ctx.say(f"Send connector '{c.name}':")
    ctx.say(f"  smart hosts:              {', '.join(c.smart_hosts) or '(none: DNS routing)'}")
    ctx.say(f"  port:                     {c.port}")
    ctx.say(f"  source transport servers: {', '.join(c.source_transport_servers) or '(none)'}")
    ctx.say(f"  enabled:                  {'yes' if c.enabled else 'NO'}")
    ctx.say(f"  protocol logging:         {c.protocol_logging_level}")
    return []


def configuration(ctx: CheckContext) -> list[Finding]:
    """Mechanism, routing, credential, TLS, ForceHELO and the pre-flight rules."""
    return diagnosis.configuration(_connector(ctx))


def enabled(ctx: CheckContext) -> list[Finding]:
    if _connector(ctx).enabled:
        return [Finding(Status.OK, "enabled", "the connector is enabled")]
    return [
        Finding(Status.FAIL, "enabled", "the connector is disabled: nothing is sent through it")
    ]


def dns_routing(ctx: CheckContext) -> list[Finding]:
    if not _connector(ctx).dns_routing_enabled:
        return []
    return [
        Finding(
            Status.WARN,
            "routing",
            "DNS routing (MX records): the 2002 names a host DNS chose; this fix corrects "
            "smart hosts, so check DNS and the firewall for that host instead",
        )
    ]


def certificate(ctx: CheckContext) -> list[Finding]:
    """TlsCertificateName against the certificates enabled for SMTP (needs the session)."""
    connector = _connector(ctx)
    if ctx.session is None:
        return []
    return diagnosis.certificate(connector, ctx.session.connector_certificates(connector))


def smart_host_probe(ctx: CheckContext) -> list[Finding]:
    """What each smart host offers (SMTP probe) and whether it is reachable; the first that
    answers is kept for the fix (``notes["probe"]``), as the transport uses it."""
    connector = _connector(ctx)
    if not connector.smart_hosts or connector.dns_routing_enabled:
        return []
    results = []
    for host in connector.smart_hosts:  # Exchange fails over between them in order
        ctx.say(f"Probing smart host {host}:{connector.port} ...")
        results.append(
            probe(host, connector.port, ca_file=ctx.options.probe_ca_file, timeout=PROBE_TIMEOUT)
        )
    ctx.say(PROBE_NOTE)
    ctx.notes["probe"] = next((r for r in results if r.connected), results[0])
    found = []
    for result in results:
        found += diagnosis.smart_host(result, connector)
        found.append(diagnosis.reachability(result))
    return found


def _evidence(ctx: CheckContext, *, here: bool, events: bool = False) -> Evidence:
    """The server's own view (its WinRM endpoint) and, with ``here``, this machine's checks;
    gathered once per diagnosis (``notes["evidence"]``)."""
    if "evidence" not in ctx.notes:
        ctx.notes["evidence"] = (
            gather(
                ctx.session,
                ctx.password,
                _connector(ctx),
                warn=ctx.env.err,
                winrm_url=ctx.options.winrm_url,
                here=here,
                timeout=REACHABILITY_TIMEOUT,
                events=events,
            )
            if ctx.session is not None
            else Evidence()
        )
    evidence: Evidence = ctx.notes["evidence"]
    return evidence


def reachability(ctx: CheckContext) -> list[Finding]:
    """Each smart host from the transport server itself (Test-NetConnection over its WinRM
    endpoint) and from this machine (DNS, TCP, banner), with where each finding was made, and
    the server's Application-log events for ``related-events`` (``notes["evidence"]``,
    ``notes["reachability"]``: this machine's checks)."""
    evidence = _evidence(ctx, here=True, events=True)
    if evidence.server_checks:
        ctx.say(f"Reachability from {evidence.server} (the server that sends, Test-NetConnection):")
        for server_check in evidence.server_checks:
            ctx.say(f"  {server_check.line()}")
    elif evidence.note:
        ctx.say(f"Note: {evidence.note}.")
    checks = evidence.here
    ctx.notes["reachability"] = checks
    if checks:
        ctx.say(f"Reachability ({FROM_HERE}):")
        for check in checks:
            for line in check.lines():
                ctx.say(f"  {line}")
    return [
        *evidence.findings(),
        *(_reachable(check) for check in checks),
        Finding(Status.WARN, "verdict", evidence.verdict()),
    ]


def server_view(ctx: CheckContext) -> list[Finding]:
    """Test-NetConnection and the Send protocol log on the transport server itself, without
    this machine's checks (the SMTP probe is those); nothing without its view."""
    connector = _connector(ctx)
    if ctx.session is None or connector.dns_routing_enabled or not connector.smart_hosts:
        return []
    evidence = _evidence(ctx, here=False)
    if evidence.note:
        ctx.say(f"Note: {evidence.note}.")
    for check in evidence.server_checks:
        ctx.say(f"From {check.server}: {check.line()}")
    return [*evidence.findings(), Finding(Status.WARN, "verdict", evidence.verdict())]


def _reachable(check: HostCheck) -> Finding:
    where = f"{check.host}:{check.port}"
    if check.reachable:
        attempt = next(a for a in check.attempts if a.banner is not None)
        return Finding(
            Status.OK,
            "reachability",
            f"{where} answers from this machine ({attempt.banner}; TCP {attempt.connect_ms:.0f} "
            f"ms, banner {attempt.banner_ms:.0f} ms)",
        )
    return Finding(
        Status.FAIL, "reachability", f"{where} from this machine: {check.outcome}: {check.meaning}"
    )


def event_endpoint(ctx: CheckContext) -> list[Finding]:
    """The endpoint the event could not reach, next to what the connector says now."""
    connector = _connector(ctx)
    port = ctx.prefill.get("failed_port")
    host = ctx.prefill.get("failed_host")
    if port is None or ctx.event is None or ctx.event.connector != connector.name:
        return []
    if port != connector.port:
        return [
            Finding(
                Status.WARN,
                "event",
                f"the event failed on port {port}, the connector now uses {connector.port}: "
                "it was changed since, or another connector logged it",
            )
        ]
    return [Finding(Status.WARN, "event", f"the event could not connect to {host} port {port}")]


def queues(ctx: CheckContext) -> list[Finding]:
    """Each queue with its status and LastError explained (cause and action); after
    ``reachability``, a connection error the server no longer has is called older."""
    evidence: Evidence = ctx.notes.get("evidence", Evidence())
    stale = evidence.stale_queues(ctx.queues)
    found = []
    for queue in ctx.queues:
        explained = parse_last_error(queue.last_error)
        if explained is None:
            found.append(
                Finding(Status.OK, f"queue {queue.identity}", f"{queue.message_count} waiting")
            )
            continue
        found.append(
            Finding(
                Status.FAIL,
                f"queue {queue.identity}",
                f"{queue.status}, {queue.message_count} waiting; {explained.summary} "
                f"(cause: {explained.cause}); "
                + (
                    f"but {evidence.server} connects now: the error is older, a retry is what "
                    "it needs"
                    if queue in stale
                    else explained.action
                ),
            )
        )
    if not ctx.queues:
        found.append(Finding(Status.OK, "queue", "no queue for this connector"))
    return found


def queue_last_error(ctx: CheckContext) -> list[Finding]:
    """Only the queues that have a LastError, in one sentence each."""
    found = []
    for queue in ctx.queues:
        explained = diagnosis.explain_last_error(queue.last_error)
        if explained is not None:
            found.append(
                Finding(
                    Status.FAIL,
                    f"queue {queue.identity}",
                    f"{queue.message_count} waiting; {explained.summary}",
                )
            )
    return found


def related_events(ctx: CheckContext) -> list[Finding]:
    """Every readable event that names this connector, grouped: from the given event text,
    and from the server's own Application log when ``reachability`` had its view
    (``notes["related"]``)."""
    text = ctx.event_text or ctx.options.event_text
    connector = _connector(ctx)
    records = [r for r in parse_any(text, "event text") if r.ok] if text else []
    evidence: Evidence | None = ctx.notes.get("evidence")
    if evidence is not None:
        records += evidence.events
    related: list[EventGroup] = [g for g in group(records) if g.record.connector == connector.name]
    ctx.notes["related"] = related
    if not related:
        return []
    parts = []
    for g in related:
        when = f" {g.first:%Y-%m-%d %H:%M}" if g.first else ""
        if g.last and g.last != g.first:
            when += f" .. {g.last:%H:%M}"
        target = g.record.remote_endpoint or g.record.target_server or ""
        parts.append(f"{g.record.event_id} x{g.count}{when} {target}".strip())
    return [Finding(Status.WARN, "events", "related Application-log events: " + "; ".join(parts))]


def escalation(ctx: CheckContext) -> list[Finding]:
    """Whether anything checked here explains a failing queue (``notes["local_causes"]``);
    after ``reachability``."""
    checks: list[HostCheck] = ctx.notes.get("reachability", [])
    evidence: Evidence = ctx.notes.get("evidence", Evidence())
    stale = evidence.stale_queues(ctx.queues)
    # The server's own failures count first; this machine's only while its view is missing.
    causes = [
        f"smart host {c.host} port {c.port} does not answer from {c.server}"
        for c in evidence.server_checks
        if not c.succeeded
    ]
    causes += local_causes(
        _connector(ctx),
        [q for q in ctx.queues if q not in stale],
        checks if evidence.server_reaches is None else [],
    )
    causes += [f"queue {q.identity}: retry it, {evidence.server} connects now" for q in stale]
    ctx.notes["local_causes"] = causes
    if not any(q.last_error for q in ctx.queues) or causes:
        return []
    return [
        Finding(
            Status.WARN,
            "escalation",
            "nothing checked here explains the failure: the smart host answers from this "
            "machine and the connector is enabled; an escalation file will be offered",
        )
    ]


CHECKS: dict[str, Check] = {
    "event-hints": event_hints,
    "show-connector": show_connector,
    "configuration": configuration,
    "enabled": enabled,
    "dns-routing": dns_routing,
    "certificate": certificate,
    "smart-host-probe": smart_host_probe,
    "reachability": reachability,
    "server-view": server_view,
    "event-endpoint": event_endpoint,
    "queues": queues,
    "queue-last-error": queue_last_error,
    "related-events": related_events,
    "escalation": escalation,
}
