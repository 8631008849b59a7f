"""`remediate bulk plan|apply|undo`: one file of rows, many connectors over many endpoints."""

from __future__ import annotations

import argparse
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from remediate.core import interrupts
from remediate.core.env import Environment
from remediate.core.errors import Interrupted, NotInteractiveError, UsageError
from remediate.core.status import ExitStatus

if TYPE_CHECKING:
    from remediate.bulk.runner import BulkRun, ConnectorOutcome, EndpointState, Planner
    from remediate.bulk.spec import BulkSpec

NAME = "bulk"
DESCRIPTION = """\
plan:  read every endpoint's connectors (one Get-SendConnector each), print per connector what
       would change (before/after) and, with --output, the whole dry-run script.
       Exit status: 0 nothing to change, 10 changes pending, 6 a row cannot be planned,
       5 an endpoint could not be read, 2 the file has problems (each listed with its line).
apply: the same, then apply only the differences: endpoints in parallel (--parallel), the
       connectors of one endpoint as pipelines of one shell, --in-flight at once; a backup
       and an audit entry for every change, one undo script for the run; a recap per
       endpoint and connector; --report writes it as JSON.
       Exit status: 0 all ok or changed, 6 something failed or was skipped, 130 Ctrl-C.
undo:  restore what a run changed, from the backups its --report lists.

Passwords are never in the file. With --password-stdin stdin holds line 1: the admin password
(for every endpoint whose password is not in the keyring; may be empty) and line 2: the one
shared relay password (for every relay account not in the keyring under its credential_key)."""
EPILOG = """\
examples:
  remediate bulk plan rotate.yaml --output rotate.ps1
  remediate bulk apply rotate.yaml --yes --parallel 4 --report run.json
  printf '%s\\n%s\\n' "$ADMIN_PW" "$RELAY_PW" | \\
      remediate bulk apply rotate.csv --password-stdin --yes
  remediate bulk undo run.json --yes
"""
MAX_IN_FLIGHT = 16  # runspaces in one shell; Exchange's own throttling is per shell and user


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.ui.jsonout import add_json_argument

    actions = parser.add_subparsers(dest="bulk_action", metavar="ACTION", required=True)
    plan = actions.add_parser("plan", help="show what would change (and the dry-run script)")
    apply = actions.add_parser("apply", help="apply the differences, report per connector")
    undo = actions.add_parser("undo", help="restore what a run changed, from its report")
    for sub in (plan, apply):
        sub.add_argument("file", type=Path, metavar="FILE", help="the rows (.yaml, .yml, .csv)")
    undo.add_argument("report_file", type=Path, metavar="REPORT", help="a report of bulk apply")
    plan.add_argument("--output", type=Path, metavar="FILE.ps1", help="write the dry-run script")
    apply.add_argument("--report", type=Path, metavar="FILE", help="write the JSON report")
    apply.add_argument("--force", action="store_true", help="replace an existing --report file")
    for sub in (plan, apply, undo):
        sub.add_argument(
            "--parallel",
            type=int,
            default=4,
            metavar="N",
            help="endpoints worked on at once (default 4)",
        )
        sub.add_argument(
            "--in-flight",
            type=int,
            default=8,
            metavar="N",
            help="changes sent at once per endpoint, as pipelines of one shell (default 8)",
        )
        sub.add_argument(
            "--processes",
            type=int,
            metavar="N",
            help="worker processes running the shells, so the client uses N cores (0: none,"
            " all in this process; default: one per CPU, at most --parallel and one per"
            " endpoint)",
        )
        sub.add_argument(
            "--password-stdin",
            action="store_true",
            help="line 1: admin password, line 2: shared relay password",
        )
    for sub in (apply, undo):
        sub.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    add_json_argument(plan, "the plans per endpoint and connector")
    for sub in (apply, undo):
        add_json_argument(sub, "the report (as --report writes it)")


def run(args: argparse.Namespace, out: Environment) -> int:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.ui.jsonout import for_people

    args.json_env = out  # with --json the document goes here; every other line to stderr
    env = for_people(out, args)
    if args.parallel < 1:
        raise UsageError("--parallel must be 1 or more")
    if not 1 <= args.in_flight <= MAX_IN_FLIGHT:
        raise UsageError(f"--in-flight must be 1 to {MAX_IN_FLIGHT}")
    if args.processes is not None and args.processes < 0:
        raise UsageError("--processes must be 0 or more")
    if args.bulk_action == "undo":
        return _undo(args, env)
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.bulk.spec import SpecError, load
    from remediate.remote.connections import ProfileStore

    try:
        spec = load(args.file, ProfileStore(environ=env.environ))
    except SpecError as bad:
        for line in bad.lines():
            env.err(line)
        raise
    if args.bulk_action == "plan":
        return _plan(args, env, spec)
    return _apply(args, env, spec, source=args.file)


def _open_run(
    args: argparse.Namespace,
    env: Environment,
    spec: BulkSpec,
    planner: Planner | None = None,
    *,
    lock: bool = False,
) -> BulkRun:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.bulk.diff import plan_endpoint
    from remediate.bulk.passwords import admin_passwords
    from remediate.bulk.runner import BulkRun

    passwords = admin_passwords(spec.endpoints(), env, password_stdin=args.password_stdin)
    return BulkRun(
        spec,
        passwords,
        parallel=args.parallel,
        in_flight=args.in_flight,
        environ=env.environ,
        planner=planner or plan_endpoint,
        lock=lock,
        warn=env.err,
        processes=_processes(args.processes, min(len(spec.endpoints()), args.parallel)),
    )


def _processes(wanted: int | None, endpoints: int) -> int:
    """--processes, or by default one worker per CPU and at most one per endpoint worked on
    at once; none when that is one (a single worker only moves the client out of this
    process)."""
    if wanted is not None:
        return wanted
    default = min(os.cpu_count() or 1, endpoints)
    return default if default > 1 else 0


def _show(env: Environment, states: list[EndpointState]) -> None:
    """Per connector the before/after diff; rows matching nothing; endpoints not read."""
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.bulk.diff import diff_lines

    for state in states:
        label = state.endpoint.label
        if state.error is not None:
            env.out(f"!!! {label}: not read: {state.error}")
            continue
        for unmatched in state.unmatched:
            env.out(f"!!! {label}: line {unmatched.row.line}: {unmatched.message}")
        for target in state.targets:
            for line in diff_lines(label, target):
                env.out(line)


def _summary(states: list[EndpointState]) -> tuple[int, int, int, int]:
    """(connectors with changes, change steps, rows/connectors refused, endpoints unread)."""
    pending = [t for s in states for t in s.pending]
    steps = sum(len(t.plan.changes) for t in pending if t.plan is not None)
    refused = sum(len(s.unmatched) + sum(t.error is not None for t in s.targets) for s in states)
    unread = sum(s.error is not None for s in states)
    return len(pending), steps, refused, unread


def _plan(args: argparse.Namespace, env: Environment, spec: BulkSpec) -> int:
    with _open_run(args, env, spec) as bulk:
        states = bulk.read()
        if bulk.stopped:
            raise Interrupted("interrupted while reading the endpoints; nothing was changed")
    _show(env, states)
    connectors, steps, refused, unread = _summary(states)
    env.out()
    env.out(
        f"{connectors} connector(s) to change ({steps} Set-SendConnector call(s)), "
        f"{refused} refused, {unread} endpoint(s) not read."
    )
    if args.output is not None:
        _write_script(args.output, states)
        env.err(f"wrote {args.output}; nothing was sent")
    if args.json:
        # lazy: a command module stays cheap to import (--help, completion); its work loads here
        from remediate.bulk.report import plan_json
        from remediate.ui.jsonout import emit

        emit(args.json_env, plan_json(states, args.file, args.output))
    if unread:
        return ExitStatus.CONNECTION_FAILED
    if refused:
        return ExitStatus.FAILED
    return ExitStatus.PENDING if connectors else ExitStatus.SUCCESS


def _write_script(path: Path, states: list[EndpointState]) -> None:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.core.files import write_script
    from remediate.render.script import render_script

    now = datetime.now(UTC)
    parts = [
        "# remediate bulk: one section per connector; run each endpoint's sections in the\n"
        "# Exchange Management Shell of that organisation.\n"
    ]
    for state in states:
        for target in state.pending:
            assert target.plan is not None
            parts.append(f"\n# ===== {state.endpoint.label}: {target.name} =====\n")
            parts.append(render_script(target.plan, now))
    write_script(path, "".join(parts), what="--output")


def _apply(
    args: argparse.Namespace,
    env: Environment,
    spec: BulkSpec,
    *,
    source: Path,
    planner: Planner | None = None,
) -> int:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.bulk.passwords import relay_passwords
    from remediate.bulk.report import recap_lines, reserve_report, to_json, write_report

    started = datetime.now(UTC)
    reserved = args.report is not None and reserve_report(args.report, force=args.force)
    try:
        with _open_run(args, env, spec, planner, lock=True) as bulk:
            states = bulk.read()
            _show(env, states)
            connectors, steps, _, _ = _summary(states)
            env.out()
            refs = dict.fromkeys(
                r for s in states for t in s.pending for r in (t.plan.credentials if t.plan else ())
            )
            credential = relay_passwords(refs, env, password_stdin=args.password_stdin)
            if connectors and not bulk.stopped:
                _confirm(env, connectors, steps, yes=args.yes)
            progress = _Progress(env, sum(_outcome_count(s) for s in states))
            bulk.apply(credential, progress, read_again=not args.yes)  # asked: time passed
            progress.finish()
            undo_script = bulk.write_undo_script()
    except BaseException:
        if reserved:  # nothing was applied: the report's name is free again
            args.report.unlink(missing_ok=True)
        raise
    for line in recap_lines(states):
        env.report(line)
    if undo_script is not None:
        env.report(f"undo script (all changes of this run): {undo_script}")
    if args.report is not None:
        write_report(
            args.report, to_json(states, source, started=started, interrupted=bulk.stopped)
        )
        env.report(f"report: {args.report}")
    if args.json and not bulk.stopped:  # stopped: the error document says so instead
        # lazy: a command module stays cheap to import (--help, completion); its work loads here
        from remediate.ui.jsonout import emit

        emit(args.json_env, to_json(states, source, started=started, interrupted=False))
    if bulk.stopped:
        changed = sum(o.status.value == "changed" for s in states for o in s.outcomes)
        raise Interrupted(
            f"interrupted ({interrupts.reason()}): stopped after the steps in flight; "
            f"{changed} connector(s) changed before that (listed above as changed), the ones "
            "skipped were not run"
        )
    return max((s.exit_status for s in states), default=ExitStatus.SUCCESS)


def _outcome_count(state: EndpointState) -> int:
    if state.error is not None:
        return len(state.rows)
    return len(state.targets) + len(state.unmatched)


def _confirm(env: Environment, connectors: int, steps: int, *, yes: bool) -> None:
    if yes:
        return
    if not env.interactive:
        raise NotInteractiveError(
            "not confirmed: no terminal to ask on; add --yes to apply without asking",
            hint="'remediate bulk plan FILE' shows the changes without sending any",
        )
    env.write_err(f"Apply {steps} change(s) to {connectors} connector(s)? [y/N] ")
    env.stderr.flush()
    if env.stdin.readline().strip().lower() not in ("y", "yes"):
        raise UsageError("not applied: not confirmed")


class _Progress:
    """A bar on a terminal, else one line per connector (stderr)."""

    WIDTH = 30

    def __init__(self, env: Environment, total: int) -> None:
        self.env = env
        self.total = max(total, 1)
        self.done = 0
        self.lock = threading.Lock()
        try:
            self.bar = env.stderr.isatty()
        except (AttributeError, ValueError):
            self.bar = False

    def __call__(self, state: EndpointState, outcome: ConnectorOutcome) -> None:
        with self.lock:
            self.done += 1
            if self.bar:
                filled = self.WIDTH * self.done // self.total
                self.env.stderr.write("\r")  # our own: back to the bar's start
                self.env.write_err(
                    f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {self.done}/{self.total}"
                )
            else:
                self.env.write_err(
                    f"[{self.done}/{self.total}] {state.endpoint.label}: {outcome.connector}: "
                    f"{outcome.status.value}\n"
                )
            self.env.stderr.flush()

    def finish(self) -> None:
        if self.bar:
            self.env.write_err("\n")


def _undo(args: argparse.Namespace, env: Environment) -> int:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.bulk.report import read_report
    from remediate.bulk.undo import UndoSet

    undo = UndoSet(args.report_file, read_report(args.report_file))
    if not undo.spec.rows:
        env.out("Nothing to undo: the report lists no backup.")
        return ExitStatus.SUCCESS
    args.report, args.force = None, False  # undo writes no report of its own
    return _apply(args, env, undo.spec, source=args.report_file, planner=undo.plan)
