"""The wizard's shared stages: intake, connection, connector, (event flow: diagnose, fix),
preview, apply, verify, undo offer, summary.

Ctrl-C anywhere: before the apply nothing was sent; during it the executor stops between
steps and says what was applied; the wizard prints that and nothing else is sent.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remediate.core.env import Environment
from remediate.core.errors import ConnectionFailed, LoginRefused, UsageError
from remediate.core.exchange import ProtocolLoggingLevel
from remediate.core.filenames import file_name_part
from remediate.core.files import write_script
from remediate.core.options import FixOptions
from remediate.core.output import status_line, terminal_width, wrap
from remediate.core.planner import build_plan, relay_credential
from remediate.core.playbooks import find, load_all
from remediate.core.status import ExitStatus
from remediate.core.terminal import command_word
from remediate.core.undo import undo_plan
from remediate.diagnose.checks import checklist, explain_last_error
from remediate.diagnose.events import group, parse_any, read_event_file
from remediate.diagnose.intake import suggest
from remediate.diagnose.playbook_checks import run as run_checks
from remediate.remote.connections import AuthMethod, ProfileStore, check_profile_name, parse_server
from remediate.remote.kerberos import has_ticket, principal_name
from remediate.remote.secrets import ENDPOINT_SERVICE
from remediate.remote.session import Session
from remediate.render.script import render_script
from remediate.run.backup import backup_dir
from remediate.run.execute import ExecutionInterrupted, changed_something, describe
from remediate.run.locks import ConnectorLocks
from remediate.run.pipeline import change, verdict_status
from remediate.run.queue_watch import MailFlow, QueueVerdict, watch
from remediate.run.report import before_after, connector_table, differences
from remediate.ui.wizard import flow_for
from remediate.ui.wizard.context import WizardContext, WizardOptions
from remediate.ui.wizard.credentials import keyring_secret, relay_account
from remediate.ui.wizard.prompter import Choice, Prompter

if TYPE_CHECKING:
    from remediate.core.exchange import QueueInfo, SendConnector
    from remediate.core.options import FixOptions
    from remediate.core.plan import Plan
    from remediate.remote.connections import Connection
    from remediate.run.pipeline import Outcome
    from remediate.run.queue_watch import QueueVerdict

NEW_CONNECTION = "(new connection)"
TRIES = 3  # a question answered wrongly is asked again, up to this many times in all
INTAKE_QUESTION = (
    "Paste the event message and end it with an empty line, or type the event number "
    "(2016, 2002) or the path of a file holding the text (Enter alone: choose the event):"
)


def run_wizard(env: Environment, prompter: Prompter, options: WizardOptions) -> int:
    """The whole guided fix; returns the exit status."""

    ctx = WizardContext(env, prompter, options)
    try:
        return _stages(ctx)
    except ExecutionInterrupted as stopped:
        env.err("Interrupted during the apply. " + stopped.message)
        _where_backup(ctx, stopped.recap.backup if stopped.recap else None)
        env.err("Nothing else was sent to Exchange.")
        return ExitStatus.INTERRUPTED
    except (KeyboardInterrupt, EOFError):  # Ctrl-C, or the terminal's input ended
        env.err(_interrupted_text(ctx))
        return ExitStatus.INTERRUPTED
    finally:
        if ctx.locks is not None:
            ctx.locks.release()
        if ctx.session is not None:
            ctx.session.close()


def _stages(ctx: WizardContext) -> int:
    intake(ctx)
    assert ctx.playbook is not None
    flow = flow_for(ctx.playbook)
    connect(ctx)
    find_connector(ctx)
    ctx.say()
    findings = run_checks(ctx, ctx.playbook.checks)
    ctx.say()
    ctx.say("Diagnosis (nothing has been changed):")
    for line in checklist(findings):
        status_line(ctx.env, f"  {line}")
    ctx.say()
    options = flow.choose_fix(ctx)
    plan = _plan(ctx, options, what_if=False)
    if not plan.changes:
        ctx.say(f"No change needed: '{plan.connector}' already has these settings.")
        return ExitStatus.SUCCESS
    status = preview_and_apply(ctx, options, plan)
    if status is not None:
        return status
    verdict = verify(ctx)
    after_retry = getattr(flow, "after_retry", None)
    if after_retry is not None:
        after_retry(ctx, options)
    logging_back_off(ctx, options)
    verdict = recover(ctx, flow, verdict)
    summary(ctx, verdict)
    return verdict_status(verdict)  # the verdict line's: 0 mail flows, 6 still fails, 7 not known


# --- intake --------------------------------------------------------------------------------


def intake(ctx: WizardContext) -> None:
    """Event text (option or pasted), an event number or a file path; a bad answer is
    explained and asked again (TRIES in all)."""

    text = ctx.options.event_text
    if text is None and ctx.options.playbook is None:
        for attempt in range(1, TRIES + 1):
            answer = ctx.prompter.paste("event_text", INTAKE_QUESTION, _whole_answer)
            try:
                _take_intake(ctx, answer)
                return
            except UsageError as bad:
                if attempt == TRIES:
                    raise
                ctx.say(f"{bad.message} (try {attempt + 1} of {TRIES}).")
                if bad.hint:
                    ctx.say(f"  {bad.hint}")
    if text:
        _read_event(ctx, text)
        assert ctx.event is not None
        ctx.event_text = text
        ctx.playbook = find(str(ctx.event.event_id))
        return
    name = ctx.options.playbook
    if name is None:
        name = _choose_playbook(ctx)
    ctx.playbook = find(name)


def _whole_answer(line: str) -> bool:
    """An event number, a file path or an event message on one line is a whole answer;
    anything else (``Log Name: Application``, the first line Event Viewer copies) starts a
    paste read up to an empty line."""

    if line.isdigit() or _is_file(line):
        return True
    return any(r.ok for r in parse_any(line, "the event text"))


def _is_file(text: str) -> bool:
    try:
        return len(text) < 4096 and Path(text).expanduser().is_file()
    except (OSError, ValueError):
        return False


def _take_intake(ctx: WizardContext, answer: str) -> None:
    if not answer:
        ctx.playbook = find(_choose_playbook(ctx))
    elif answer.isdigit():
        ctx.playbook = find(answer)
    else:
        if _is_file(answer):
            answer = read_event_file(Path(answer).expanduser(), answer)
        _read_event(ctx, answer)
        assert ctx.event is not None
        ctx.event_text = answer
        ctx.playbook = find(str(ctx.event.event_id))


def _read_event(ctx: WizardContext, text: str) -> None:
    records = [r for r in parse_any(text, "the event text") if r.ok]
    if not records:
        raise UsageError(
            "the event text is not an MSExchangeTransport 2016 or 2002 message",
            hint="paste the message from the General tab of Event Viewer",
        )
    suggestion = suggest(group(records)[0])
    ctx.event = suggestion.record
    ctx.prefill = {k: v for k, v in suggestion.inputs.items() if v}
    ctx.hints = suggestion.findings
    ctx.say(f"Event {ctx.event.event_id} for Send connector '{ctx.event.connector}'.")
    for hint in ctx.hints:
        ctx.say(f"  - {hint}")


def _choose_playbook(ctx: WizardContext) -> str:
    choices = [Choice(str(p.event.id), f"{p.event.id}: {p.title}") for p in load_all()]
    return ctx.prompter.select("event", "Which event are you fixing?", choices)


# --- connection and connector --------------------------------------------------------------


def connect(ctx: WizardContext) -> None:
    """Open the session; a password Exchange refuses is asked again (TRIES in all), then one
    clear stop."""

    conn = ctx.options.connection or _choose_connection(ctx)
    ctx.connection = conn
    given = ctx.options.admin_password
    password, asked = (given, False) if given else _admin_password(ctx, conn)
    typed = 1 if asked else 0
    while True:
        ctx.say(f"Connecting to {conn.label} ...")
        session = Session(conn, password, ctx.env.err)
        try:
            session.open()
        except LoginRefused as refused:
            if given or password is None or typed >= TRIES:
                if typed >= TRIES:
                    raise ConnectionFailed(
                        f"{conn.url} refused the password for {conn.username} {TRIES} times; "
                        "stopped here, nothing was changed",
                        hint="check the user name (a UPN such as admin@contoso.com), that "
                        "the account may use Exchange's remote shell, and the authentication "
                        "method",
                    ) from None
                raise
            ctx.say(f"{refused.message}.")
            ctx.say(f"Type the password again (try {typed + 1} of {TRIES}).")
            password = ctx.prompter.password("admin_password", f"Password for {conn.username}:")
            typed += 1
            continue
        ctx.session = session
        ctx.password = password
        return


def _choose_connection(ctx: WizardContext) -> Connection:
    store = ProfileStore(environ=ctx.env.environ)
    profiles = store.list()
    choices = [Choice(p.profile or p.url, f"{p.profile}  ({p.url})") for p in profiles]
    choices.append(Choice(NEW_CONNECTION, "New connection ..."))
    name = ctx.prompter.select("connection", "Exchange server:", choices)
    if name != NEW_CONNECTION:
        return store.get(name)
    return _new_connection(ctx, store)


def _new_connection(ctx: WizardContext, store: Any) -> Connection:
    url = ctx.prompter.text(
        "server", "Exchange PowerShell URL (http://ex01.contoso.com/PowerShell):"
    )
    conn = parse_server(url)
    auth = ctx.prompter.select(
        "auth", "Authentication:", [Choice(m.value, m.value) for m in AuthMethod], "kerberos"
    )
    user = ctx.prompter.text("user", "Admin user name (UPN):")
    conn = replace(conn, auth=AuthMethod(auth), username=user or None)
    if ctx.prompter.confirm("save_profile", "Save this connection as a profile?", default=False):
        name = check_profile_name(ctx.prompter.text("profile_name", "Profile name:"))
        conn = replace(conn, profile=name)
        store.save(conn)
        ctx.say(f"Saved profile '{name}'.")
    return conn


def _admin_password(ctx: WizardContext, conn: Connection) -> tuple[str | None, bool]:
    """(password or None for a ticket or certificate, whether it was typed just now)."""

    if conn.auth.value in ("kerberos", "negotiate", "certificate") and not conn.username:
        return None, False
    username = conn.username or ""  # set: a kerberos or negotiate login without one returned
    if conn.auth.value in ("kerberos", "negotiate") and has_ticket(principal_name(username)):
        return None, False  # a kinit ticket for this user: no password needed
    _, stored = keyring_secret(ctx, ENDPOINT_SERVICE, conn.secret_key)
    if stored:
        return stored, False
    return ctx.prompter.password("admin_password", f"Password for {conn.username}:"), True


def find_connector(ctx: WizardContext) -> None:
    assert ctx.session is not None
    connectors = ctx.session.get_connectors()
    if not connectors:
        raise UsageError("Exchange reports no Send connector")
    ctx.say()
    ctx.say("Send connectors:")
    for line in connector_table(connectors):
        ctx.say(f"  {line}")
    wanted = ctx.options.connector or (ctx.event.connector if ctx.event else None)
    choices = [Choice(c.name, c.name) for c in connectors]
    name = ctx.prompter.select("connector", "Which Send connector?", choices, default=wanted)
    ctx.connector = ctx.original = next(c for c in connectors if c.name == name)
    ctx.queues = ctx.session.get_queues(ctx.connector)


# --- preview and apply ---------------------------------------------------------------------

_ACTIONS = (
    Choice("apply", "Apply now"),
    Choice("what-if", "Apply with -WhatIf first (Exchange only reports), then decide"),
    Choice("save", "Save the script and stop"),
    Choice("cancel", "Cancel (change nothing)"),
)


def _plan(ctx: WizardContext, options: Any, *, what_if: bool) -> Plan:
    assert ctx.playbook is not None
    return build_plan(ctx.playbook, options, current=ctx.connector, what_if=what_if)


def preview_and_apply(ctx: WizardContext, options: Any, plan: Plan) -> int | None:
    """Show the script; apply, -WhatIf first, save, or cancel. None: applied, go on."""

    ctx.say("The exact PowerShell that will run (passwords are never in it):")
    ctx.say()
    ctx.env.write(render_script(plan))
    ctx.say()
    action = ctx.prompter.select("action", "What now?", _ACTIONS, default="apply")
    if action == "cancel":
        ctx.say("Cancelled: nothing was changed.")
        return ExitStatus.ERROR
    if action == "save":
        save_script(ctx, plan)
        return ExitStatus.SUCCESS
    if action == "what-if":
        _apply(ctx, _plan(ctx, options, what_if=True))
        if not ctx.prompter.confirm("apply_after_what_if", "Apply for real now?", default=True):
            ctx.say("Stopped after -WhatIf: nothing was changed.")
            return ExitStatus.ERROR
    applied = _apply(ctx, plan)
    if not applied.result.ok:
        ctx.say("A step failed; the steps after it were not sent.")
        offer_undo(ctx)
        summary(ctx, _step_failed(applied))
        return ExitStatus.FAILED
    return None


def _step_failed(applied: Outcome) -> QueueVerdict:
    failed = applied.result.failed_step
    what = describe(failed.step) if failed is not None else "a step"
    return QueueVerdict(
        MailFlow.FAILS,
        (),
        f"{what} failed, so the fix is not in place (the queues were not retried)",
    )


def save_script(ctx: WizardContext, plan: Plan) -> None:
    name = f"remediate-{plan.event_id}-{file_name_part(plan.connector)}.ps1"
    default = ctx.options.script_dir / name
    answer = ctx.prompter.text("script_path", "Save the script as:", default=str(default))
    path = write_script(Path(answer), render_script(plan), what="the script")
    ctx.script = path
    ctx.say(f"Script saved to {path}; nothing was changed.")


def _apply(ctx: WizardContext, plan: Plan) -> Outcome:
    """Through the one apply pipeline, under the connector's lock (held from the first apply
    to the end of the wizard): the connector read again, backed up, changed, audited."""

    assert ctx.session and ctx.connection and ctx.connector
    total = len(plan.steps)
    planned_from = ctx.connector

    def progress(step: Any, result: Any) -> None:
        number = plan.steps.index(step) + 1
        ctx.say(f"[{number}/{total}] {step.cmdlet}: {_outcome(result)}")
        for line in result.what_if:
            ctx.say(f"    {line}")
        for error in result.errors:
            ctx.say(f"    ERROR: {error.message}")

    def unchanged(current: SendConnector) -> Plan:
        """The plan was made from the read before the questions, so a connector changed
        meanwhile (another run, another admin) is refused rather than changed and audited
        with stale "old" values."""

        if differences(planned_from, current):
            raise UsageError(
                f"'{planned_from.name}' changed since it was read (another run or admin?); "
                "nothing was sent",
                hint="run the wizard again to plan from its current settings",
            )
        return plan

    def ready(_plan: Plan, _current: SendConnector) -> Any:
        ctx.say()
        return ctx.credential

    if ctx.locks is None:
        ctx.locks = ConnectorLocks(ctx.connection, ctx.env.environ)
    applied = change(
        ctx.session, ctx.connection, planned_from.name, unchanged, ready,
        locks=ctx.locks, on_step=progress, environ=ctx.env.environ,
    )  # fmt: skip
    ctx.say()
    if not plan.what_if:
        for line in before_after(planned_from, applied.after):
            ctx.say(line)
        ctx.applied = applied
        ctx.applies.append(applied)
        ctx.connector = applied.after
    return applied


def _outcome(result: Any) -> str:
    if not result.ok:
        return "FAILED"
    if result.changed and not changed_something(result):
        return "ok, unchanged (Exchange: no settings modified)"
    return "ok"


# --- verify, recover, undo, summary --------------------------------------------------------

CREDENTIAL_NOT_SET = "(AuthenticationCredentialNotSet)"  # Exchange's error for BasicAuth*


def verify(ctx: WizardContext) -> QueueVerdict:
    """Watch the connector's queues on every source server until mail flows, or the watch
    gives up (retrying while Exchange has not yet picked up the change)."""

    assert ctx.session and ctx.applied
    connector = ctx.applied.after
    servers = ", ".join(connector.source_transport_servers) or "the session's server"
    ctx.say()
    ctx.say(f"Watching the queues on {servers} (up to {ctx.options.queue_wait:g} s) ...")
    verdict = watch(ctx.session, connector, ctx.queues, ctx.options.queue_wait, say=ctx.say)
    for queue in verdict.queues:
        ctx.say(f"  {queue.identity}: {queue.status}, {queue.message_count} message(s) waiting")
    ctx.say(verdict.line())
    if verdict.flow is not MailFlow.FLOWS:
        _explain(ctx, [q for q in verdict.queues if q.message_count > 0])
    return verdict


_LAST_RESORT = (
    Choice("undo", "Undo: put the connector back as it was before this run"),
    Choice("keep", "Keep the connector as it is now"),
)


def recover(ctx: WizardContext, flow: Any, verdict: QueueVerdict) -> QueueVerdict:
    """When mail does not flow: the flow's own remedies first (2016 after a credential
    refusal: retype the password, another mechanism), then undo, then keep. Each remedy goes
    through the one apply pipeline and is watched again."""

    for _ in range(TRIES):
        if verdict.flow is MailFlow.FLOWS or ctx.applied is None:
            return verdict
        remedies = getattr(flow, "remedies", None)
        choices = list(remedies(ctx, verdict)) if remedies is not None else []
        if not choices:
            offer_undo(ctx)
            return verdict
        answer = ctx.prompter.select(
            "after_failure",
            "Mail still does not flow. What now?",
            [*choices, *_LAST_RESORT],
            default=choices[0].value,
        )
        if answer == "undo":
            undo(ctx)
            return verdict
        if answer == "keep":
            _kept(ctx)
            return verdict
        options = flow.remedy(ctx, answer)
        plan = _plan(ctx, options, what_if=False)
        applied = _apply(ctx, plan)
        if not applied.result.ok:
            ctx.say("A step failed; the steps after it were not sent.")
            return _step_failed(applied)
        verdict = verify(ctx)
    offer_undo(ctx)
    return verdict


def logging_back_off(ctx: WizardContext, options: FixOptions) -> None:
    """Verbose protocol logging turned on for the retry goes back to its level once the
    watch is over (not in the same plan: Exchange applies changes after a delay, so the
    retry would never have been logged). Through the apply pipeline: backed up, audited."""

    original, applied = ctx.original, ctx.applied
    if original is None or applied is None or applied.result.interrupted is not None:
        return
    level = original.protocol_logging_level
    if (
        options.protocol_logging is not ProtocolLoggingLevel.VERBOSE
        or level is options.protocol_logging
    ):
        return
    ctx.say()
    question = (
        f"Turn verbose protocol logging back to {level} now? (the retry has been logged; "
        "read the send protocol log on the transport servers)"
    )
    if not ctx.prompter.confirm("logging_off", question, default=True):
        ctx.say("Verbose protocol logging stays on; turn it off when the log has been read.")
        return
    assert ctx.playbook is not None and ctx.connector is not None
    current = ctx.connector
    plan = build_plan(
        ctx.playbook, FixOptions(connector=current.name, protocol_logging=level), current=current
    )
    plan = replace(plan, steps=tuple(s for s in plan.steps if s.cmdlet.endswith("SendConnector")))
    restored = _apply(ctx, plan)
    ctx.say(f"Protocol logging: {restored.after.protocol_logging_level}.")


def _explain(ctx: WizardContext, queues: list[QueueInfo]) -> None:
    width = terminal_width(ctx.env)
    for queue in queues:
        explained = explain_last_error(queue.last_error)
        if explained is not None:
            for line in wrap(f"{queue.identity} LastError: {queue.last_error}", width, "  "):
                ctx.say(line)
            meaning = f"Meaning: {explained.summary}. What to do: {explained.action}."
            for line in wrap(meaning, width, "  "):
                ctx.say(line)


def offer_undo(ctx: WizardContext) -> None:
    if ctx.applied is None or not ctx.applies or ctx.applies[0].backup is None:
        return
    if not ctx.prompter.confirm("undo", "Undo the change from the backup?", default=False):
        _kept(ctx)
        return
    undo(ctx)


def _kept(ctx: WizardContext) -> None:
    first = ctx.applies[0].backup if ctx.applies else None
    if ctx.options.demo or first is None:
        ctx.say("Kept: the connector stays as it is now.")
    else:
        ctx.say(f"Kept. To undo later: remediate undo {command_word(str(first))}")


def undo(ctx: WizardContext) -> None:
    """Put the connector back as the first backup saw it, through the apply pipeline
    (backed up, audited), planned from its current settings: no step sets a value it already
    has. When Exchange needs a credential for the old values, the relay account is asked for."""

    assert ctx.original is not None and ctx.connector is not None and ctx.applies
    first = ctx.applies[0].result.plan
    applied = replace(first, steps=tuple(s for a in ctx.applies for s in a.result.plan.steps))
    plan = undo_plan(ctx.original, applied, current=ctx.connector)
    if any(CREDENTIAL_NOT_SET in note for note in plan.notes):
        mechanism = ctx.original.smart_host_auth_mechanism
        ctx.say(
            f"The old settings use {mechanism}, which Exchange accepts only with a credential: "
            "enter the relay account to restore them."
        )

        username = relay_account(ctx)
        plan = undo_plan(
            ctx.original, applied, current=ctx.connector, credential=relay_credential(username)
        )
    left = [
        d for d in differences(ctx.original, ctx.connector) if d[0] != "AuthenticationCredential"
    ]
    if not plan.changes:
        if not left:
            ctx.say("Nothing to undo: the connector already equals the backup.")
        else:
            ctx.say("Not undone: Exchange would refuse the old values.")
        _notes(ctx, plan)
        return
    _notes(ctx, plan)
    ctx.say("Undo:")
    result = _apply(ctx, plan).result
    ctx.say(result.summary())
    ctx.undone = result.ok


def _notes(ctx: WizardContext, plan: Plan) -> None:
    for note in plan.notes:
        if not note.startswith("nothing to undo"):
            ctx.say(f"  note: {_plain(note)}")


def _plain(note: str) -> str:
    """A planner note without the command-line advice it gives to `remediate undo` users."""
    for cli in ("; give --", "; to go back to the old account"):
        note = note.split(cli)[0]
    return note


def summary(ctx: WizardContext, verdict: QueueVerdict) -> None:
    """What was changed and where its records are; the verdict line last."""

    ctx.say()
    ctx.say("Summary:")
    for applied in ctx.applies:
        ctx.say(f"  {applied.result.headline()}")
    if ctx.original is not None and ctx.applies:
        changed = differences(ctx.original, ctx.connector) if ctx.connector else []
        for name, old, new in changed:
            ctx.say(f"  Changed {name}: {_shown(old)} -> {_shown(new)}")
        if not changed:
            ctx.say("  The connector has the settings it had before this run.")
    first = ctx.applies[0] if ctx.applies else None
    if first is not None and first.saved is not None:
        ctx.say(f"  Backup: {first.saved.path}")
        ctx.say(f"  Undo script: {first.saved.script}")
    if first is not None and first.audit is not None:
        ctx.say(f"  Audit log: {first.audit}")
    if ctx.undone:
        ctx.say("  The change was undone from the backup.")
    if ctx.script is not None:
        ctx.say(f"  Script: {ctx.script}")
    ctx.say(verdict.line())


def _shown(value: Any) -> str:
    if value is None or value == []:
        return "(none)"
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _interrupted_text(ctx: WizardContext) -> str:
    if ctx.applied is None:
        return "Interrupted: nothing was changed on Exchange."
    return (
        f"Interrupted after the apply. {ctx.applied.result.headline()} "
        "Nothing else was sent to Exchange."
    )


def _where_backup(ctx: WizardContext, path: Path | None) -> None:
    if path is not None:
        ctx.env.err(f"The backup taken before the apply: {path}")
        ctx.env.err(f"To undo: remediate undo {command_word(str(path))}")
    else:
        ctx.env.err(f"The backup taken before the apply is in {backup_dir(ctx.env.environ)}.")
