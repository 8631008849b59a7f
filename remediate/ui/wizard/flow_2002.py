"""Event 2002's stages: diagnose (the connector; reachability of each smart host from the
transport server itself, Test-NetConnection over its WinRM endpoint, then DNS/TCP/banner from
this machine; the queue's LastError; related events) and fix (port and smart hosts only when
the server's own evidence says they do not answer, enable a disabled connector, verbose
protocol logging for the retry). After the retry the server's Send protocol log is read and
explained, then logging goes back off. When nothing local explains the failure, the
escalation bundle is written. See ``remediate.ui.wizard`` for the registry contract.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remediate.core.errors import UsageError
from remediate.core.exchange import ProtocolLoggingLevel
from remediate.diagnose.checks import Finding, Status

if TYPE_CHECKING:
    from remediate.core.exchange import SendConnector
    from remediate.core.planner import FixOptions
    from remediate.diagnose.events import EventGroup
    from remediate.diagnose.reachability import HostCheck
    from remediate.diagnose.vantage import Evidence
    from remediate.ui.wizard.flow import WizardContext

PLAYBOOK_ID = "send-connection-error"
ANSWER_KEYS: dict[str, type] = {
    "enable": bool,
    "verbose_logging": bool,
    "logging_off": bool,
    "escalate": bool,
    "escalation_file": str,
}
REACHABILITY_TIMEOUT = 5.0


def diagnose(ctx: WizardContext) -> list[Finding]:
    from remediate.diagnose.escalation import local_causes
    from remediate.diagnose.vantage import Evidence, gather

    connector = ctx.connector
    assert connector is not None
    _show_connector(ctx)
    found = [Finding(Status.WARN, "event", hint) for hint in ctx.hints]
    found.append(
        Finding(Status.OK, "enabled", "the connector is enabled")
        if connector.enabled
        else Finding(
            Status.FAIL, "enabled", "the connector is disabled: nothing is sent through it"
        )
    )
    if connector.dns_routing_enabled:
        found.append(
            Finding(
                Status.WARN,
                "routing",
                "DNS routing (MX records): the 2002 names a host DNS chose; this fix corrects "
                "smart hosts, so check DNS and the firewall for that host instead",
            )
        )
    evidence = (
        gather(
            ctx.session,
            ctx.password,
            connector,
            warn=ctx.env.err,
            winrm_url=ctx.options.winrm_url,
            timeout=REACHABILITY_TIMEOUT,
            events=True,
        )
        if ctx.session is not None
        else Evidence()
    )
    _show_reachability(ctx, evidence)
    checks = evidence.here
    found += evidence.findings()
    found += [_reachability(check) for check in checks]
    found.append(Finding(Status.WARN, "verdict", evidence.verdict()))
    found += _event_endpoint(ctx)
    found += _queues(ctx, evidence)
    related = _related_events(ctx, evidence)
    if related:
        found.append(_events_finding(related))
    # Unreachable from this machine counts only while the server's own view is missing.
    stale = evidence.stale_queues(ctx.queues)
    causes = [
        f"smart host {c.host} port {c.port} does not answer from {c.server}"
        for c in evidence.server_checks
        if not c.succeeded
    ]
    causes += local_causes(
        connector,
        [q for q in ctx.queues if q not in stale],
        checks if evidence.server_reaches is None else [],
    )
    causes += [f"queue {q.identity}: retry it, {evidence.server} connects now" for q in stale]
    ctx.notes.update(reachability=checks, related=related, local_causes=causes, evidence=evidence)
    failing = any(q.last_error for q in ctx.queues)
    if failing and not causes:
        found.append(
            Finding(
                Status.WARN,
                "escalation",
                "nothing checked here explains the failure: the smart host answers from this "
                "machine and the connector is enabled; an escalation file will be offered",
            )
        )
    return found


def choose_fix(ctx: WizardContext) -> FixOptions:
    from remediate.core.planner import FixOptions

    connector = ctx.connector
    assert connector is not None
    evidence: Evidence | None = ctx.notes.get("evidence")
    smart_hosts: tuple[str, ...] = ()
    port: int | None = None
    if _routing_suspect(ctx, evidence):
        smart_hosts, port = _routing(ctx, evidence)
    enable = None
    if not connector.enabled:
        if ctx.prompter.confirm("enable", "Enable the connector?", default=True):
            enable = True
    verbose = ctx.prompter.confirm(
        "verbose_logging",
        "Turn on verbose protocol logging for the retry? (turned back off after the watch)",
        default=True,
    )
    if not ctx.notes.get("local_causes") and any(q.last_error for q in ctx.queues):
        _offer_escalation(ctx)
    return FixOptions(
        connector=connector.name,
        smart_hosts=smart_hosts,
        port=port,
        enable=enable,
        protocol_logging=ProtocolLoggingLevel.VERBOSE if verbose else None,
    )


# --- diagnose helpers ------------------------------------------------------------------------


def _show_connector(ctx: WizardContext) -> None:
    c = ctx.connector
    assert c is not None
    ctx.say(f"Send connector '{c.name}':")
    ctx.say(f"  smart hosts:              {', '.join(c.smart_hosts) or '(none: DNS routing)'}")
    ctx.say(f"  port:                     {c.port}")
    ctx.say(f"  source transport servers: {', '.join(c.source_transport_servers) or '(none)'}")
    ctx.say(f"  enabled:                  {'yes' if c.enabled else 'NO'}")
    ctx.say(f"  protocol logging:         {c.protocol_logging_level}")


def _show_reachability(ctx: WizardContext, evidence: Evidence) -> None:
    from remediate.diagnose.reachability import FROM_HERE

    if evidence.server_checks:
        ctx.say(f"Reachability from {evidence.server} (the server that sends, Test-NetConnection):")
        for server_check in evidence.server_checks:
            ctx.say(f"  {server_check.line()}")
    elif evidence.note:
        ctx.say(f"Note: {evidence.note}.")
    if evidence.here:
        ctx.say(f"Reachability ({FROM_HERE}):")
        for check in evidence.here:
            for line in check.lines():
                ctx.say(f"  {line}")


def after_retry(ctx: WizardContext, options: FixOptions) -> None:
    """With verbose logging on for the retry: the connector's sessions in the server's Send
    protocol log, explained (the retry's own session among them)."""
    from remediate.diagnose.server_view import ServerView, open_view
    from remediate.diagnose.vantage import Evidence, read_protocol_log

    if options.protocol_logging is not ProtocolLoggingLevel.VERBOSE or ctx.session is None:
        return
    connector = ctx.connector
    assert connector is not None
    opened = open_view(ctx.session.connection, ctx.password, ctx.env.err, url=ctx.options.winrm_url)
    ctx.say()
    if not isinstance(opened, ServerView):
        ctx.say(f"The Send protocol log was not read: {opened.note}.")
        return
    evidence = Evidence(server=opened.server)
    with opened as view:
        read_protocol_log(ctx.session, view, connector, evidence)
    ctx.say(f"Send protocol log on {evidence.server} for '{connector.name}':")
    for session in evidence.log_sessions:
        ctx.say(f"  session {session.session_id} {session.started}: {session.outcome}")
        ctx.say(f"    {session.explanation()}")
    if not evidence.log_sessions:
        ctx.say(
            "  Nothing logged yet: Exchange applies a change after AD replication and a "
            "configuration reload, and a retry made before that is not logged."
        )
    elif evidence.log_note:
        ctx.say(f"  {evidence.log_note}")


def _reachability(check: HostCheck) -> Finding:
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


def _event_endpoint(ctx: WizardContext) -> list[Finding]:
    """The endpoint the event could not reach, next to what the connector says now."""
    connector = ctx.connector
    assert connector is not None
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


def _queues(ctx: WizardContext, evidence: Evidence) -> list[Finding]:
    from remediate.core.last_error import parse_last_error

    stale = evidence.stale_queues(ctx.queues)
    found = []
    for queue in ctx.queues:
        diagnosis = parse_last_error(queue.last_error)
        if diagnosis is None:
            found.append(
                Finding(Status.OK, f"queue {queue.identity}", f"{queue.message_count} waiting")
            )
            continue
        found.append(
            Finding(
                Status.FAIL,
                f"queue {queue.identity}",
                f"{queue.status}, {queue.message_count} waiting; {diagnosis.summary} "
                f"(cause: {diagnosis.cause}); "
                + (
                    f"but {evidence.server} connects now: the error is older, a retry is what "
                    "it needs"
                    if queue in stale
                    else diagnosis.action
                ),
            )
        )
    if not ctx.queues:
        found.append(Finding(Status.OK, "queue", "no queue for this connector"))
    return found


def _related_events(ctx: WizardContext, evidence: Evidence) -> list[EventGroup]:
    """Every readable event that names this connector, grouped: from the given event text,
    and from the server's own Application log when its view was had."""
    from remediate.diagnose.events import group, parse_any

    text = ctx.event_text or ctx.options.event_text
    connector = ctx.connector
    if connector is None:
        return []
    records = [r for r in parse_any(text, "event text") if r.ok] if text else []
    records += evidence.events
    return [g for g in group(records) if g.record.connector == connector.name]


def _events_finding(groups: list[EventGroup]) -> Finding:
    parts = []
    for g in groups:
        when = f" {g.first:%Y-%m-%d %H:%M}" if g.first else ""
        if g.last and g.last != g.first:
            when += f" .. {g.last:%H:%M}"
        target = g.record.remote_endpoint or g.record.target_server or ""
        parts.append(f"{g.record.event_id} x{g.count}{when} {target}".strip())
    return Finding(Status.WARN, "events", "related Application-log events: " + "; ".join(parts))


# --- fix helpers -----------------------------------------------------------------------------


def _routing_suspect(ctx: WizardContext, evidence: Evidence | None) -> bool:
    """Only the server's evidence counts: its own Test-NetConnection, or, without its view,
    the queues' LastError (written by the transport itself); never this machine's checks."""
    from remediate.core.last_error import Cause, parse_last_error

    if ctx.connector is None or ctx.connector.dns_routing_enabled:
        return False
    if evidence is not None and evidence.server_reaches is not None:
        return evidence.routing_suspect
    causes = {getattr(parse_last_error(q.last_error), "cause", None) for q in ctx.queues}
    return bool(causes & {Cause.DNS, Cause.CONNECTION_REFUSED})


def _routing(ctx: WizardContext, evidence: Evidence | None) -> tuple[tuple[str, ...], int | None]:
    """Ask for the port and smart hosts; return only what differs from the connector. The
    answer is tested from the server when its view is available, else from this machine."""
    from remediate.diagnose.reachability import check_host
    from remediate.diagnose.server_view import ServerView, open_view

    connector = ctx.connector
    assert connector is not None
    ctx.say("The smart host does not answer as configured.")
    answer = ctx.prompter.text("port", "Smart host port:", default=str(connector.port))
    port = _port(answer)
    current = ", ".join(connector.smart_hosts)
    typed = ctx.prompter.text("smart_host", "Smart hosts (comma separated):", default=current)
    hosts = tuple(h.strip() for h in typed.split(",") if h.strip())
    if not hosts:
        raise UsageError("smart hosts: give at least one host name or IP address")
    opened = None
    if evidence is not None and evidence.server and ctx.session is not None:
        opened = open_view(
            ctx.session.connection, ctx.password, ctx.env.err, url=ctx.options.winrm_url
        )
    if isinstance(opened, ServerView):
        with opened as view:
            for host in hosts:
                ctx.say(f"  {view.test_tcp(host, port).line()}")
        return _changed(connector, hosts, port)
    for host in hosts:
        check = check_host(host, port, timeout=REACHABILITY_TIMEOUT)
        ctx.say(f"  {host}:{port} from this machine: {check.outcome}: {check.meaning}")
    return _changed(connector, hosts, port)


def _changed(
    connector: SendConnector, hosts: tuple[str, ...], port: int
) -> tuple[tuple[str, ...], int | None]:
    changed_hosts = hosts if hosts != connector.smart_hosts else ()
    return changed_hosts, (port if port != connector.port else None)


def _port(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise UsageError(f"port: {text!r} is not a port number (1-65535)")
    return int(text)


def _offer_escalation(ctx: WizardContext) -> None:
    from pathlib import Path

    from remediate.diagnose.escalation import Escalation, default_path, write_bundle

    connector = ctx.connector
    assert connector is not None
    ctx.say("Nothing checked from here explains the failure: this needs escalation.")
    if not ctx.prompter.confirm("escalate", "Write the escalation file for support?", True):
        return
    default = str(default_path(connector.name, ctx.env.environ))
    answer = ctx.prompter.text("escalation_file", "Escalation file:", default=default)
    path = Path(answer).expanduser()
    bundle = Escalation(
        connector,
        list(ctx.queues),
        ctx.notes.get("related", []),
        ctx.notes.get("reachability", []),
        server_view=ctx.notes["evidence"].to_json() if "evidence" in ctx.notes else None,
    )
    written = write_bundle(bundle, None if answer == default else path, environ=ctx.env.environ)
    ctx.notes["escalation_file"] = written
    ctx.say(f"Escalation file written: {written}")
    ctx.say(
        "Send it with the SmtpSend protocol log from each source transport server "
        f"({', '.join(connector.source_transport_servers) or 'the transport servers'})."
    )
