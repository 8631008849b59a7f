"""Event 2002's fix questions: port and smart hosts only when the server's own evidence says
they do not answer, enable a disabled connector, verbose protocol logging for the retry.
After the retry the server's Send protocol log is read and explained, then logging goes back
off. The diagnosis is the playbook's checks (``remediate.diagnose.playbook_checks``: the
connector, reachability from the transport server itself over its WinRM endpoint and from
this machine, the queue's LastError, related events). When nothing local explains the
failure, the escalation bundle is written. See ``remediate.ui.wizard`` for the contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from remediate.core.errors import UsageError
from remediate.core.exchange import ProtocolLoggingLevel
from remediate.core.last_error import Cause, parse_last_error
from remediate.core.options import FixOptions, parse_port
from remediate.diagnose.escalation import Escalation, default_path, write_bundle
from remediate.diagnose.playbook_checks import REACHABILITY_TIMEOUT
from remediate.diagnose.reachability import check_host
from remediate.diagnose.server_view import ServerView, open_view
from remediate.diagnose.vantage import Evidence, read_protocol_log

if TYPE_CHECKING:
    from remediate.core.exchange import SendConnector
    from remediate.core.options import FixOptions
    from remediate.diagnose.vantage import Evidence
    from remediate.ui.wizard.context import WizardContext

ANSWER_KEYS: dict[str, type] = {
    "enable": bool,
    "verbose_logging": bool,
    "logging_off": bool,
    "escalate": bool,
    "escalation_file": str,
}


def choose_fix(ctx: WizardContext) -> FixOptions:
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


def after_retry(ctx: WizardContext, options: FixOptions) -> None:
    """With verbose logging on for the retry: the connector's sessions in the server's Send
    protocol log, explained (the retry's own session among them)."""

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


# --- fix helpers -----------------------------------------------------------------------------


def _routing_suspect(ctx: WizardContext, evidence: Evidence | None) -> bool:
    """Only the server's evidence counts: its own Test-NetConnection, or, without its view,
    the queues' LastError (written by the transport itself); never this machine's checks."""

    if ctx.connector is None or ctx.connector.dns_routing_enabled:
        return False
    if evidence is not None and evidence.server_reaches is not None:
        return evidence.routing_suspect
    causes = {getattr(parse_last_error(q.last_error), "cause", None) for q in ctx.queues}
    return bool(causes & {Cause.DNS, Cause.CONNECTION_REFUSED})


def _routing(ctx: WizardContext, evidence: Evidence | None) -> tuple[tuple[str, ...], int | None]:
    """Ask for the port and smart hosts; return only what differs from the connector. The
    answer is tested from the server when its view is available, else from this machine."""

    connector = ctx.connector
    assert connector is not None
    ctx.say("The smart host does not answer as configured.")
    answer = ctx.prompter.text("port", "Smart host port:", default=str(connector.port))
    port = parse_port(answer, "port")
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


def _offer_escalation(ctx: WizardContext) -> None:
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
