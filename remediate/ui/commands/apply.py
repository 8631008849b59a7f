"""`remediate apply`: read the connector, show the plan, confirm, back up, run, report."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from remediate.core.env import Environment
from remediate.core.errors import (
    NotInteractiveError,
    RemediateError,
    RemoteCommandError,
    UsageError,
)
from remediate.core.terminal import command_word

if TYPE_CHECKING:
    from remediate.core.exchange import QueueInfo, SendConnector
    from remediate.core.plan import Plan, Step
    from remediate.remote.connections import Connection
    from remediate.remote.session import Session, StepResult
    from remediate.run.execute import Applied, CredentialSource
    from remediate.run.queue_watch import QueueVerdict

NAME = "apply"
HELP = "fix a Send connector: show the plan, confirm, back up, run it, show before/after"
DESCRIPTION = """\
Read the Send connector from Exchange, build the plan 'remediate plan' would print (only the
settings that differ), show it, ask for confirmation (or take --yes), save a backup and an
undo script, run the steps, read the connector back and print before/after, the steps that
ran, changed or did not run, and the queue after Retry-Queue. Every change is appended to the
audit log. Exit status: 0 done (or nothing to change), 2 refused or not confirmed, 4 no
password, 5 connection failed, 6 a step failed (the summary says what was applied)."""
EPILOG = """\
examples:
  remediate apply 2016 --profile ex01 --connector "Outbound to Relay" \\
      --mechanism BasicAuthRequireTLS --username relay@contoso.com --yes
  remediate apply 2016 --profile ex01 --connector "Outbound to Relay" \\
      --username relay@contoso.com --reenter-credential --what-if
  printf '%s\\n%s\\n' "$ADMIN_PW" "$RELAY_PW" | remediate apply 2016 --server URL --auth basic \\
      --user admin --password-stdin --connector "Outbound to Relay" --username relay --yes
"""
QUEUE_WAIT = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from remediate.core.planner import add_fix_arguments
    from remediate.remote.connections import add_connection_arguments
    from remediate.ui.jsonout import add_json_argument

    parser.add_argument("playbook", metavar="PLAYBOOK", help="event number (2016, 2002) or id")
    parser.add_argument(
        "--connector", metavar="NAME", required=True, help="the Send connector's name"
    )
    add_confirm_arguments(parser)
    parser.add_argument(
        "--queue-wait",
        type=float,
        default=QUEUE_WAIT,
        metavar="SECONDS",
        help=f"how long to watch the queue drain after Retry-Queue (default {QUEUE_WAIT:g})",
    )
    add_fix_arguments(parser)
    add_connection_arguments(parser)
    add_json_argument(parser, "the run (plan, steps, before/after, backup)")


def add_confirm_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--what-if",
        action="store_true",
        help="send every change with -WhatIf: Exchange only reports, nothing changes",
    )
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")


def run(args: argparse.Namespace, out: Environment) -> int:
    from remediate.core.planner import build_plan, fix_options_from_args
    from remediate.core.playbooks import find
    from remediate.remote.connections import connection_from_args
    from remediate.remote.session import open_session
    from remediate.render.script import render_script
    from remediate.run.locks import ConnectorLocks, read_locked
    from remediate.run.runjson import change_run_json
    from remediate.ui.jsonout import emit, for_people

    env = for_people(out, args)  # with --json, stdout carries the JSON document only
    playbook = find(args.playbook)
    fix_options_from_args(args)  # bad options fail before anything is sent
    if args.queue_wait < 0:
        raise UsageError("--queue-wait must be 0 or more seconds")
    connection = connection_from_args(args, env)
    with (
        ConnectorLocks(connection, env.environ, [args.connector]) as locks,
        open_session(connection, env, password_stdin=args.password_stdin) as session,
    ):
        before = read_locked(locks, lambda name: read_connector(session, name), args.connector)
        options = fix_options_from_args(args)
        plan = build_plan(playbook, options, current=before, what_if=args.what_if)
        if not plan.changes:
            env.out(f"No change: '{before.name}' already has the settings asked for.")
            if args.json:
                emit(out, change_run_json("apply", connection.label, plan, before, None))
            return 0
        env.write(render_script(plan))
        credential = relay_credentials(plan, env, args.password_stdin)
        confirm(env, plan, connection.label, yes=args.yes or args.what_if)
        applied = execute_and_report(session, plan, before, connection, credential, env)
        verdict = None
        if applied.result.ok and not plan.what_if:
            verdict = report_queues(session, applied, env, args.queue_wait)
    if args.json:
        emit(out, change_run_json("apply", connection.label, plan, before, applied, verdict))
    return 0 if applied.result.ok else RemoteCommandError.exit_code


def read_connector(session: Session, name: str) -> SendConnector:
    connectors = session.get_connectors(name)
    if not connectors:
        raise RemoteCommandError(f"Send connector '{name}' not found")
    return connectors[0]


def relay_credentials(plan: Plan, env: Environment, password_stdin: bool) -> CredentialSource:
    """Every relay password the plan needs, resolved now: a missing one fails before any
    change (keyring, then --password-stdin line 2, then a prompt)."""
    from remediate.remote.secrets import relay_password
    from remediate.run.execute import resolved_credentials

    return resolved_credentials(
        plan, lambda ref: relay_password(ref, env, password_stdin=password_stdin)
    )


def confirm(env: Environment, plan: Plan, endpoint: str, *, yes: bool) -> None:
    """Ask before changing anything; without a terminal, --yes is required."""
    if yes:
        return
    question = (
        f"Apply {len(plan.changes)} change step(s) to '{plan.connector}' at {endpoint}? [y/N] "
    )
    if not env.interactive:
        raise NotInteractiveError(
            "not confirmed: no terminal to ask on; add --yes to apply without asking",
            hint="or --what-if to see what Exchange would do",
        )
    env.write_err(question)
    env.stderr.flush()
    answer = env.stdin.readline()
    if not answer.endswith("\n"):  # end of input: end the question's line
        env.err("")
    if answer.strip().lower() not in ("y", "yes"):
        raise UsageError("not applied: not confirmed")


def execute_and_report(
    session: Session,
    plan: Plan,
    before: SendConnector,
    connection: Connection,
    credential: CredentialSource,
    env: Environment,
) -> Applied:
    """apply_plan with progress lines, then before/after, the step recap and where the
    backup and audit went."""
    from remediate.run.execute import apply_plan
    from remediate.run.report import before_after

    total = len(plan.steps)
    env.out()

    def progress(step: Step, result: StepResult) -> None:
        number = plan.steps.index(step) + 1
        env.out(f"[{number}/{total}] {step.cmdlet}: {'ok' if result.ok else 'FAILED'}")
        lines = [*result.what_if, *(f"WARNING: {w}" for w in result.warnings)]
        if step.cmdlet == "Get-Queue" and result.ok:
            lines += queue_summaries(result.output)
        for line in lines:
            env.out(f"    {line}")
        for error in result.errors:
            env.out(f"    ERROR: {error.message}")

    try:
        applied = apply_plan(
            session, plan, before, connection, credential, on_step=progress, environ=env.environ
        )
    except RemediateError as exc:
        backup = getattr(exc, "backup", None)
        if backup is not None:
            word = command_word(str(backup.path))
            undo = f"Backup: {backup.path}\nUndo:   remediate undo {word}"
            exc.hint = "\n".join(filter(None, [exc.hint, undo]))
        raise
    env.report()
    for line in before_after(before, applied.after):
        env.report(line)
    env.report()
    env.report(applied.result.summary())
    if plan.what_if:
        env.report("What-if: nothing was changed, so no backup was taken and nothing was audited.")
    if applied.backup is not None:
        env.report(f"Backup: {applied.backup.path}")
        env.report(f"Undo:   remediate undo {command_word(str(applied.backup.path))}")
    if applied.audit_path is not None:
        env.report(f"Audit log: {applied.audit_path}")
    return applied


def report_queues(
    session: Session, applied: Applied, env: Environment, wait: float
) -> QueueVerdict:
    """Watch the connector's queues on every source server after Retry-Queue (retrying
    while Exchange has not yet picked up the change), then print them and the verdict."""
    from remediate.run.queue_watch import watch
    from remediate.run.report import queue_lines

    verdict = watch(session, applied.after, queues_before(applied), wait, say=env.out)
    env.out()
    env.out("Queues after Retry-Queue:")
    for line in queue_lines(list(verdict.queues)):
        env.out(f"  {line}")
    env.out(verdict.line())
    return verdict


def queues_before(applied: Applied) -> list[QueueInfo]:
    """The connector's queues as the plan's Get-Queue steps read them before any change."""
    from remediate.remote.wire import read_queues
    from remediate.run.queue_watch import queues_in

    found: list[QueueInfo] = []
    for result in applied.result.results:
        if result.step.is_change:
            break
        if result.step.cmdlet == "Get-Queue" and result.ok:
            found += read_queues(result.output)
    return queues_in(found)


def queue_summaries(output: list[object]) -> list[str]:
    """One line per queue a Get-Queue step returned (status, messages, LastError)."""
    lines = []
    for item in output:
        if isinstance(item, dict):
            last_error = item.get("LastError") or "none"
            lines.append(
                f"{item.get('Identity')}: {item.get('Status')}, "
                f"{item.get('MessageCount')} message(s), LastError: {last_error}"
            )
    return lines
