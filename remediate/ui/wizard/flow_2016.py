"""Event 2016's stages: diagnose (configuration, SMTP probe of the smart host, reachability)
and fix (mechanism with the reason, relay credential, port/smart host when the diagnosis
calls for it). See ``remediate.ui.wizard`` for the registry contract.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remediate.core.errors import UsageError
from remediate.core.exchange import AuthMechanism
from remediate.diagnose.checks import Finding, Status
from remediate.ui.wizard.prompter import Choice

if TYPE_CHECKING:
    from remediate.core.plan import CredentialRef
    from remediate.core.planner import FixOptions
    from remediate.diagnose.probe import ProbeResult
    from remediate.run.queue_watch import QueueVerdict
    from remediate.ui.wizard.flow import WizardContext

PROBE_NOTE = (
    "The SMTP probe runs from THIS machine, not from the transport server: a firewall "
    "between the two can make the results differ."
)
PASSWORD_TRIES = 3
TRIES = 3
ANSWER_KEYS: dict[str, type] = {"mechanism_anyway": bool, "after_failure": str}
REMEDIES = (
    Choice("retype", "Retype the relay password and apply only the credential again"),
    Choice("mechanism", "Choose another mechanism (the smart host's offers shown again)"),
)


def diagnose(ctx: WizardContext) -> list[Finding]:
    from remediate.diagnose import checks as diagnosis
    from remediate.diagnose.probe import probe

    connector = ctx.connector
    assert connector is not None
    found = [Finding(Status.WARN, "event", hint) for hint in ctx.hints]
    found += diagnosis.configuration(connector)
    if ctx.session is not None:
        found += diagnosis.certificate(connector, ctx.session.connector_certificates(connector))
    if connector.smart_hosts and not connector.dns_routing_enabled:
        results = []
        for host in connector.smart_hosts:  # Exchange fails over between them in order
            ctx.say(f"Probing smart host {host}:{connector.port} ...")
            results.append(
                probe(host, connector.port, ca_file=ctx.options.probe_ca_file, timeout=5)
            )
        ctx.say(PROBE_NOTE)
        # The fix is judged on the first smart host that answers, as the transport uses it.
        ctx.notes["probe"] = next((r for r in results if r.connected), results[0])
        for result in results:
            found += diagnosis.smart_host(result, connector)
            found.append(diagnosis.reachability(result))
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


def choose_fix(ctx: WizardContext) -> FixOptions:
    from remediate.core.planner import FixOptions

    connector = ctx.connector
    assert connector is not None
    result: ProbeResult | None = ctx.notes.get("probe")
    smart_hosts, port = _routing(ctx, result)
    mechanism = _mechanism(ctx, result)
    if mechanism is not AuthMechanism.NONE and connector.dns_routing_enabled and not smart_hosts:
        ctx.say(f"{mechanism} needs a smart host; the connector routes by DNS now.")
        suggested = (ctx.prefill.get("smart_hosts") or [""])[0]
        smart_hosts = (ctx.prompter.text("smart_host", "Smart host name:", suggested),)
        port = _port(ctx.prompter.text("port", "Smart host port:", default="587"))
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
    from remediate.ui.wizard.flow import credential_refused

    connector = ctx.connector
    if connector is None or not credential_refused(verdict):
        return []
    retype = connector.smart_host_auth_mechanism.needs_credential and "relay_user" in ctx.notes
    return list(REMEDIES) if retype else [REMEDIES[1]]


def remedy(ctx: WizardContext, answer: str) -> FixOptions:
    """The fix options for the remedy chosen (``remedies``)."""
    from remediate.core.planner import FixOptions

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
    return _typed_password(ctx, username)


def _ref(username: str) -> CredentialRef:
    from remediate.core.planner import relay_credential

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
    """Ask for another port or smart host only when the probe could not reach it, or when
    the certificate names another host."""
    connector = ctx.connector
    assert connector is not None
    hosts: tuple[str, ...] = ()
    port: int | None = None
    if result is not None and not result.connected:
        ctx.say(f"The smart host did not answer on port {connector.port}.")
        answer = ctx.prompter.text("port", "Smart host port:", default=str(connector.port))
        port = _port(answer)
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


def _port(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise UsageError(f"port: {text!r} is not a port number (1-65535)")
    return int(text)


def _mechanism(ctx: WizardContext, result: ProbeResult | None) -> AuthMechanism:
    from remediate.diagnose.checks import recommended

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


def relay_account(ctx: WizardContext) -> str:
    """User name (prefilled from the event, the name remediate last set on this connector
    (its audit log: Exchange never returns it), or the demo's), password from the keyring,
    the demo's lab account, or typed twice without echo; offer to save it."""
    from remediate.core.plan import RELAY_SERVICE
    from remediate.core.planner import relay_credential
    from remediate.core.preflight import check_username
    from remediate.run.audit import last_set_credential
    from remediate.ui.wizard.flow import keyring_secret

    connector = ctx.connector
    assert connector is not None
    lab = ctx.options.lab_relay
    url = ctx.session.connection.url if ctx.session is not None else ""
    last = last_set_credential(url, connector.name, ctx.env.environ) if url else None
    default = (
        ctx.prefill.get("username") or (last.username if last else "") or (lab[0] if lab else "")
    )
    question = "Relay account user name:"
    if last is not None and default == last.username:
        question = f"Relay account user name (last set: {last.label()}):"
    username = check_username(ctx.prompter.text("username", question, default))
    if not username:
        raise UsageError("the relay account's user name is empty")
    keyring, stored = keyring_secret(ctx, RELAY_SERVICE, username)
    choices = []
    if stored:
        choices.append(Choice("keyring", "Use the password saved in the keyring"))
    if lab and lab[0] == username:
        choices.append(Choice("lab", "Use the lab's relay password (demo only)"))
    choices.append(Choice("type", "Type the password"))
    source = ctx.prompter.select(
        "password_source", f"Password for {username}:", choices, choices[0].value
    )
    if source == "keyring":
        password = stored
    elif source == "lab":
        password = lab[1] if lab else None
    else:
        password = _typed_password(ctx, username)
        if keyring:
            if ctx.prompter.confirm(
                "save_password", "Save this password in the keyring?", default=False
            ):
                _save(ctx, username, password)
        else:
            ctx.say("No usable keyring on this machine: the password is not saved.")
    assert password is not None
    ctx.credentials[relay_credential(username)] = password
    ctx.notes["relay_user"] = username
    return username


def _save(ctx: WizardContext, username: str, password: str) -> None:
    from remediate.core.errors import SecretStoreError
    from remediate.core.plan import RELAY_SERVICE
    from remediate.remote.secrets import set_secret

    try:
        set_secret(RELAY_SERVICE, username, password, ctx.env.environ)
    except SecretStoreError as exc:
        ctx.say(f"Not saved: {exc}. The password is used for this run only.")
        return
    ctx.say(f"Saved in the keyring ({RELAY_SERVICE} / {username}).")


def _typed_password(ctx: WizardContext, username: str) -> str:
    from remediate.core.preflight import check_password

    for _ in range(PASSWORD_TRIES):
        first = ctx.prompter.password("relay_password", f"Password for {username}:")
        second = ctx.prompter.password("relay_password_again", "The same password again:")
        if first != second:
            ctx.say("The two passwords differ; type them again.")
            continue
        check_password(first)
        return first
    raise UsageError(f"the passwords for {username} did not match {PASSWORD_TRIES} times")
