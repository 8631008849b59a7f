"""`remediate apply`: read the connector, show the plan, confirm, back up, run, report."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from remediate.core.env import Environment
from remediate.core.errors import UsageError

if TYPE_CHECKING:
    from remediate.api import Handle
    from remediate.run.pipeline import Outcome

NAME = "apply"
DESCRIPTION = """\
Read the Send connector from Exchange, build the plan 'remediate plan' would print (only the
settings that differ), show it, ask for confirmation (or take --yes), save a backup and an
undo script, run the steps, read the connector back and print before/after, the steps that
ran, changed or did not run, and the queue after Retry-Queue. Every change is appended to the
audit log. Exit status: 0 done and mail flows (or nothing to change, a what-if run, or
--queue-wait 0: the queues not watched), 2 refused or not confirmed, 4 no password,
5 connection failed, 6 a step failed (the summary says what was applied) or mail still
fails, 7 whether mail flows is not known."""
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
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.remote.connections import add_connection_arguments
    from remediate.ui.commands.changing import add_confirm_arguments
    from remediate.ui.fix_arguments import add_fix_arguments
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
        help=f"how long to watch the queue drain after Retry-Queue (default {QUEUE_WAIT:g}; "
        "0: not watched)",
    )
    add_fix_arguments(parser)
    add_connection_arguments(parser)
    add_json_argument(parser, "the run (plan, steps, before/after, backup)")


def run(args: argparse.Namespace, out: Environment) -> int:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate import api
    from remediate.core.playbooks import find
    from remediate.remote.connections import connection_from_args
    from remediate.run.runjson import change_run_json
    from remediate.ui.commands.changing import Console, open_handle, report_run, settings
    from remediate.ui.fix_arguments import fix_options_from_args
    from remediate.ui.jsonout import emit, for_people

    env = for_people(out, args)  # with --json, stdout carries the JSON document only
    playbook = find(args.playbook)
    options = fix_options_from_args(args)  # bad options fail before anything is sent
    if args.queue_wait < 0:
        raise UsageError("--queue-wait must be 0 or more seconds")
    connection = connection_from_args(args, env)
    console = Console(env, connection.label, args.yes or args.what_if, args.password_stdin)
    with open_handle(
        connection, env, password_stdin=args.password_stdin, lock=[args.connector]
    ) as handle:
        try:
            outcome = api.fix(
                handle, playbook, args.connector, what_if=args.what_if,
                ready=console.ready, on_step=console.on_step, **settings(options),
            )  # fmt: skip
        except api.StepFailed as failed:  # reported below, as any run: exit status 6
            outcome = failed.outcome
        if not outcome.sent:
            env.out(f"No change: '{outcome.before.name}' already has the settings asked for.")
        else:
            report_run(env, outcome)
            if outcome.ok and not args.what_if and args.queue_wait > 0:
                outcome = report_queues(handle, outcome, env, args.queue_wait)
    if args.json:
        emit(out, change_run_json("apply", connection.label, outcome))
    return outcome.exit_status


def report_queues(handle: Handle, outcome: Outcome, env: Environment, wait: float) -> Outcome:
    """Watch the connector's queues on every source server after Retry-Queue (retrying
    while Exchange has not yet picked up the change), then print them and the verdict."""
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate import api
    from remediate.run.report import queue_lines

    watched = api.verify(handle, outcome, wait, say=env.out)
    assert watched.verdict is not None
    env.out()
    env.out("Queues after Retry-Queue:")
    for line in queue_lines(list(watched.verdict.queues)):
        env.out(f"  {line}")
    env.out(watched.verdict.line())
    return watched
