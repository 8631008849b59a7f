"""`remediate undo BACKUP`: put a connector back the way a backup saw it (or render the script)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from remediate.core.env import Environment
from remediate.core.errors import UsageError
from remediate.core.status import ExitStatus

if TYPE_CHECKING:
    from remediate.core.exchange import SendConnector
    from remediate.core.plan import Plan
    from remediate.remote.connections import Connection
    from remediate.run.backup import Backup

NAME = "undo"
DESCRIPTION = """\
Restore, from a backup 'remediate apply' took before changing a Send connector, every
setting that apply changed. The undo plan is shown, confirmed (or --yes), applied, and the
connector is read back and compared with the backup; the undo itself is backed up and
audited like any change. With --output FILE the undo script is written and nothing is sent.

The credential is never restored: Exchange does not return passwords, so no backup holds
one. Undo leaves the connector's current credential in place (a note says so); to go back to
another account, run 'remediate apply' with --username and that account's password.
Switching a connector back to DNS routing is the exception: Exchange itself then deletes the
smart hosts and the credential, as they were before."""
EPILOG = """\
examples:
  remediate undo ~/.local/state/remediate/backups/20261122T191500Z-Outbound-to-Relay.json
  remediate undo BACKUP.json --what-if
  remediate undo BACKUP.json --output undo.ps1
  remediate undo BACKUP.json --yes --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.remote.connections import add_connection_arguments
    from remediate.ui.commands.changing import add_confirm_arguments
    from remediate.ui.jsonout import add_json_argument

    parser.add_argument("backup", metavar="BACKUP", type=Path, help="a backup .json from apply")
    add_confirm_arguments(parser)
    parser.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        type=Path,
        help="write the undo script to FILE and stop (nothing is sent)",
    )
    add_connection_arguments(parser)
    add_json_argument(parser, "the run (with --output: the undo plan)")


def run(args: argparse.Namespace, out: Environment) -> int:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate import api
    from remediate.core.files import write_script
    from remediate.render.script import render_script
    from remediate.run.backup import load_backup, plan_to_json
    from remediate.run.pipeline import Outcome
    from remediate.run.runjson import change_run_json
    from remediate.ui.commands.changing import Console, open_handle, report_run
    from remediate.ui.jsonout import emit, for_people

    env = for_people(out, args)  # with --json, stdout carries the JSON document only
    saved = load_backup(args.backup)
    undo = saved.undo_plan(what_if=args.what_if)
    if args.output is not None:
        write_script(args.output, render_script(undo), what="--output")
        env.err(f"wrote {args.output} ({len(undo.changes)} change step(s)); nothing was sent")
        if args.json:
            emit(out, {**plan_to_json(undo), "output": str(args.output)})
        return ExitStatus.SUCCESS
    if not undo.changes:
        print_notes(env, undo)
        if args.json:
            nothing = Outcome.nothing_to_change(undo, saved.connector)
            emit(out, change_run_json("undo", saved.endpoint, nothing))
        return ExitStatus.SUCCESS
    connection = backup_connection(args, env, saved)
    console = Console(env, connection.label, args.yes or args.what_if, args.password_stdin)
    with open_handle(
        connection, env, password_stdin=args.password_stdin, lock=[saved.connector.name]
    ) as handle:
        try:
            outcome = api.undo(
                handle, args.backup, what_if=args.what_if,
                ready=console.ready, on_step=console.on_step,
            )  # fmt: skip
        except api.StepFailed as failed:  # reported below, as any run: exit status 6
            outcome = failed.outcome
        if not outcome.sent:
            env.out(
                f"Nothing to undo: '{outcome.before.name}' already has the settings of the backup."
            )
        else:
            report_run(env, outcome)
    if outcome.sent and outcome.ok and not args.what_if:
        env.out()
        for line in restored_lines(saved.connector, outcome.after, outcome.plan):
            env.out(line)
    if args.json:
        emit(out, change_run_json("undo", connection.label, outcome))
    return outcome.exit_status


def backup_connection(args: argparse.Namespace, env: Environment, saved: Backup) -> Connection:
    """The connection options given, else the profile the backup was taken through; refused
    when it is not the endpoint the backup came from."""
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.remote.connections import ProfileStore, connection_from_args

    if args.profile or args.server:
        connection = connection_from_args(args, env)
    else:
        names = {c.profile for c in ProfileStore(environ=env.environ).list()}
        if saved.endpoint not in names:
            raise UsageError(
                f"give --profile or --server: the backup was taken at {saved.url}",
                hint="with the same connection options apply was run with",
            )
        args.profile = saved.endpoint
        connection = connection_from_args(args, env)
    if connection.url.rstrip("/").lower() != saved.url.rstrip("/").lower():
        raise UsageError(
            f"this backup is of '{saved.connector.name}' at {saved.url}, not {connection.url}"
        )
    return connection


def restored_lines(saved: SendConnector, after: SendConnector, undo: Plan) -> list[str]:
    """Whether the connector now matches the backup (the credential aside), and the notes."""
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.run.report import differences

    left = [(name, old, new) for name, old, new in differences(saved, after)]
    lines = []
    if all(name == "AuthenticationCredential" for name, _old, _new in left):
        lines.append("Restored: every setting matches the backup (the credential aside).")
    else:
        lines.append("Not restored exactly; still different from the backup:")
        lines += [f"  {name}: backup {old!r}, now {new!r}" for name, old, new in left]
    lines += [f"Note: {note}" for note in undo.notes]
    return lines


def print_notes(env: Environment, undo: Plan) -> None:
    for note in undo.notes:
        env.out(f"Note: {note}")
