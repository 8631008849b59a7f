"""Event 2002's fix questions: port and smart hosts when they do not answer, enable a
disabled connector, verbose protocol logging for the retry, turned back off by the plan.
The diagnosis is the playbook's checks (the connector, DNS/TCP/banner reachability of each
smart host, the queue's LastError, related events). When nothing local explains the failure,
the escalation bundle is written. See ``remediate.ui.wizard`` for the contract.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remediate.core.errors import UsageError
from remediate.core.exchange import ProtocolLoggingLevel
from remediate.diagnose.playbook_checks import REACHABILITY_TIMEOUT

if TYPE_CHECKING:
    from remediate.core.planner import FixOptions
    from remediate.diagnose.reachability import HostCheck
    from remediate.ui.wizard.flow import WizardContext

ANSWER_KEYS: dict[str, type] = {
    "enable": bool,
    "verbose_logging": bool,
    "logging_off": bool,
    "escalate": bool,
    "escalation_file": str,
}


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
