"""Event 2002's stages: diagnose (the connector, DNS/TCP/banner reachability of each smart
host, the queue's LastError, related events) and fix (port and smart hosts when they do not
answer, enable a disabled connector, verbose protocol logging for the retry, turned back off
by the plan). When nothing local explains the failure, the escalation bundle is written.
See ``remediate.ui.wizard`` for the registry contract.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remediate.core.errors import UsageError
from remediate.core.exchange import ProtocolLoggingLevel
from remediate.diagnose.checks import Finding, Status

if TYPE_CHECKING:
    from remediate.core.planner import FixOptions
    from remediate.diagnose.events import EventGroup
    from remediate.diagnose.reachability import HostCheck
    from remediate.ui.wizard.flow import WizardContext

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
    from remediate.diagnose.reachability import FROM_HERE, check_connector

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
    checks = check_connector(connector, timeout=REACHABILITY_TIMEOUT)
    if checks:
        ctx.say(f"Reachability ({FROM_HERE}):")
        for check in checks:
            for line in check.lines():
                ctx.say(f"  {line}")
    found += [_reachability(check) for check in checks]
    found += _event_endpoint(ctx)
    found += _queues(ctx)
    related = _related_events(ctx)
    if related:
        found.append(_events_finding(related))
    causes = local_causes(connector, ctx.queues, checks)
    ctx.notes.update(reachability=checks, related=related, local_causes=causes)
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
    checks: list[HostCheck] = ctx.notes.get("reachability", [])
    smart_hosts: tuple[str, ...] = ()
    port: int | None = None
    if _routing_suspect(ctx, checks):
        smart_hosts, port = _routing(ctx)
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
    return Finding(Status.FAIL, "reachability", f"{where}: {check.outcome}: {check.meaning}")


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


def _queues(ctx: WizardContext) -> list[Finding]:
    from remediate.core.last_error import parse_last_error

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
                f"(cause: {diagnosis.cause}); {diagnosis.action}",
            )
        )
    if not ctx.queues:
        found.append(Finding(Status.OK, "queue", "no queue for this connector"))
    return found


def _related_events(ctx: WizardContext) -> list[EventGroup]:
    """Every readable event in the given event text that names this connector, grouped."""
    from remediate.diagnose.events import group, parse_any

    text = ctx.event_text or ctx.options.event_text
    connector = ctx.connector
    if not text or connector is None:
        return []
    records = [r for r in parse_any(text, "event text") if r.ok]
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


def _routing_suspect(ctx: WizardContext, checks: list[HostCheck]) -> bool:
    from remediate.core.last_error import Cause, parse_last_error

    if ctx.connector is None or ctx.connector.dns_routing_enabled:
        return False
    if any(not c.reachable for c in checks):
        return True
    causes = {getattr(parse_last_error(q.last_error), "cause", None) for q in ctx.queues}
    return bool(causes & {Cause.DNS, Cause.CONNECTION_REFUSED})


def _routing(ctx: WizardContext) -> tuple[tuple[str, ...], int | None]:
    """Ask for the port and smart hosts; return only what differs from the connector."""
    from remediate.diagnose.reachability import check_host

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
    for host in hosts:
        check = check_host(host, port, timeout=REACHABILITY_TIMEOUT)
        ctx.say(f"  {host}:{port} from this machine: {check.outcome}: {check.meaning}")
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
    )
    written = write_bundle(bundle, None if answer == default else path, environ=ctx.env.environ)
    ctx.notes["escalation_file"] = written
    ctx.say(f"Escalation file written: {written}")
    ctx.say(
        "Send it with the SmtpSend protocol log from each source transport server "
        f"({', '.join(connector.source_transport_servers) or 'the transport servers'})."
    )
