"""Event 2016's fix questions: mechanism with the reason, relay credential, port/smart host
only when the server's evidence calls for it. The diagnosis is the playbook's checks
(configuration, the SMTP probe of the smart host from this machine, the server's own view:
Test-NetConnection over its WinRM endpoint and its Send protocol log). See
``remediate.ui.wizard`` for the contract.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remediate.core.errors import UsageError
from remediate.core.exchange import AuthMechanism
from remediate.core.last_error import Cause, parse_last_error
from remediate.core.options import FixOptions, parse_port
from remediate.core.planner import relay_credential
from remediate.diagnose.checks import recommended
from remediate.ui.wizard.credentials import credential_refused, relay_account, typed_password
from remediate.ui.wizard.prompter import Choice

if TYPE_CHECKING:
    from remediate.core.options import FixOptions
    from remediate.core.plan import CredentialRef
    from remediate.diagnose.probe import ProbeResult
    from remediate.diagnose.vantage import Evidence
    from remediate.run.queue_watch import QueueVerdict
    from remediate.ui.wizard.context import WizardContext

TRIES = 3
ANSWER_KEYS: dict[str, type] = {"mechanism_anyway": bool, "after_failure": str}
REMEDIES = (
    Choice("retype", "Retype the relay password and apply only the credential again"),
    Choice("mechanism", "Choose another mechanism (the smart host's offers shown again)"),
)


def choose_fix(ctx: WizardContext) -> FixOptions:
    connector = ctx.connector
    assert connector is not None
    result: ProbeResult | None = ctx.notes.get("probe")
    smart_hosts, port = _routing(ctx, result)
    mechanism = _mechanism(ctx, result)
    if mechanism is not AuthMechanism.NONE and connector.dns_routing_enabled and not smart_hosts:
        ctx.say(f"{mechanism} needs a smart host; the connector routes by DNS now.")
        suggested = (ctx.prefill.get("smart_hosts") or [""])[0]
        smart_hosts = (ctx.prompter.text("smart_host", "Smart host name:", suggested),)
        port = parse_port(ctx.prompter.text("port", "Smart host port:", default="587"), "port")
    require_tls = _require_tls(ctx, result, mechanism)
    username = None
    if mechanism.needs_credential:
        username = relay_account(ctx)
    return FixOptions(
        connector=connector.name,
        mechanism=mechanism,
        username=username,
        reenter_credential=username is not None,
        smart_hosts=smart_hosts,
        port=port,
        require_tls=require_tls,
    )


def remedies(ctx: WizardContext, verdict: QueueVerdict) -> list[Choice]:
    """After a credential refusal (530/535/454): retype the password (when the mechanism
    uses one), or another mechanism."""

    connector = ctx.connector
    if connector is None or not credential_refused(verdict):
        return []
    retype = connector.smart_host_auth_mechanism.needs_credential and "relay_user" in ctx.notes
    return list(REMEDIES) if retype else [REMEDIES[1]]


def remedy(ctx: WizardContext, answer: str) -> FixOptions:
    """The fix options for the remedy chosen (``remedies``)."""

    connector = ctx.connector
    assert connector is not None
    if answer == "retype":
        username = ctx.notes["relay_user"]
        ctx.credentials[_ref(username)] = _retyped(ctx, username)
        return FixOptions(connector=connector.name, username=username, reenter_credential=True)
    result: ProbeResult | None = ctx.notes.get("probe")
    if result is not None:
        offered = ", ".join(result.auth_mechanisms) or "no AUTH"
        tls = "STARTTLS works" if result.tls_ok else "no working STARTTLS"
        ctx.say(f"The smart host {result.host}:{result.port} offers: {offered}; {tls}.")
    mechanism = _mechanism(ctx, result)
    username = relay_account(ctx) if mechanism.needs_credential else None
    return FixOptions(
        connector=connector.name,
        mechanism=mechanism,
        username=username,
        reenter_credential=username is not None,
    )


def _retyped(ctx: WizardContext, username: str) -> str:
    """The password again: typed twice (or, in the demo, the lab's); the keyring's is not
    offered, since it may be the one just refused."""
    lab = ctx.options.lab_relay
    if lab and lab[0] == username:
        choices = [
            Choice("lab", "Use the lab's relay password (demo only)"),
            Choice("type", "Type the password"),
        ]
        source = ctx.prompter.select("password_source", f"Password for {username}:", choices, "lab")
        if source == "lab":
            return lab[1]
    return typed_password(ctx, username)


def _ref(username: str) -> CredentialRef:
    return relay_credential(username)


def _require_tls(
    ctx: WizardContext, result: ProbeResult | None, mechanism: AuthMechanism
) -> bool | None:
    """Offer to turn RequireTLS off when the smart host has no working STARTTLS and the
    chosen mechanism does not need it (None: leave it as it is)."""
    connector = ctx.connector
    assert connector is not None
    if not connector.require_tls or result is None or not result.connected or result.tls_ok:
        return None
    if mechanism is AuthMechanism.BASIC_AUTH_REQUIRE_TLS:
        return None
    question = "RequireTLS is on but the smart host has no working STARTTLS. Turn it off?"
    if ctx.prompter.confirm("require_tls_off", question, default=True):
        return False
    return None


def _routing(ctx: WizardContext, result: ProbeResult | None) -> tuple[tuple[str, ...], int | None]:
    """Ask for another port or smart host only when the server's evidence says the smart
    host does not answer (``_routing_suspect``), or when the certificate names another host."""
    connector = ctx.connector
    assert connector is not None
    hosts: tuple[str, ...] = ()
    port: int | None = None
    evidence: Evidence | None = ctx.notes.get("evidence")
    if _routing_suspect(ctx, evidence):
        where = evidence.server if evidence is not None and evidence.server else "the server"
        ctx.say(f"The smart host did not answer from {where} on port {connector.port}.")
        answer = ctx.prompter.text("port", "Smart host port:", default=str(connector.port))
        port = parse_port(answer, "port")
        host = ctx.prompter.text("smart_host", "Smart host name:", default=connector.smart_hosts[0])
        if host != connector.smart_hosts[0]:
            hosts = (host,)
    elif result is not None and result.certificate and not result.certificate.matches_host:
        keep = f"keep {result.host}"
        choices = [
            Choice(name, f"use {name} (named by the certificate)")
            for name in result.certificate.names
            if "*" not in name
        ]
        choices.append(Choice(keep, keep + " (BasicAuthRequireTLS will not work)"))
        answer = ctx.prompter.select(
            "smart_host", "The certificate names another host. Smart host:", choices
        )
        if answer != keep:
            hosts = (answer,)
    return hosts, (port if port != connector.port else None)


def _routing_suspect(ctx: WizardContext, evidence: Evidence | None) -> bool:
    """Only the server's evidence: its Test-NetConnection, or without its view the queues'
    LastError (the transport's own words); the probe from this machine never decides."""

    if evidence is not None and evidence.server_reaches is not None:
        return evidence.routing_suspect
    causes = {getattr(parse_last_error(q.last_error), "cause", None) for q in ctx.queues}
    return bool(causes & {Cause.DNS, Cause.CONNECTION_REFUSED})


def _mechanism(ctx: WizardContext, result: ProbeResult | None) -> AuthMechanism:
    connector = ctx.connector
    assert connector is not None
    current = connector.smart_host_auth_mechanism
    if result is None or not result.connected:
        choices = [Choice(m.value, m.value) for m in AuthMechanism]
        answer = ctx.prompter.select("mechanism", "Authentication mechanism:", choices, current)
        return AuthMechanism(answer)
    verdicts = recommended(result)
    choices = []
    for index, verdict in enumerate(verdicts):
        label = (
            "recommended"
            if index == 0 and verdict.works
            else ("works" if verdict.works else "will not work")
        )
        choices.append(
            Choice(verdict.mechanism.value, f"{verdict.mechanism} ({label}: {verdict.reason})")
        )
    default = verdicts[0].mechanism.value
    for _ in range(TRIES):
        answer = ctx.prompter.select("mechanism", "Authentication mechanism:", choices, default)
        chosen = next(v for v in verdicts if v.mechanism.value == answer)
        if chosen.works:
            return chosen.mechanism
        question = (
            f"{chosen.mechanism} will not work with this smart host: {chosen.reason}. "
            "Use it anyway?"
        )
        if ctx.prompter.confirm("mechanism_anyway", question, default=False):
            return chosen.mechanism
        ctx.say(f"Not {chosen.mechanism}: choose again.")
    raise UsageError(
        f"mechanism: no mechanism chosen after {TRIES} tries (each one chosen will not work "
        "and was not confirmed)"
    )
