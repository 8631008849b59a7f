"""The one apply pipeline: lock, read, plan, back up, execute, audit, re-read, report.

Every change to a connector goes through here, whoever asks for it: ``remediate apply`` and
``undo``, the wizard (its fix, its remedies, protocol logging turned back, its undo), the
public API and bulk. So every change is backed up before and in the audit log after.

- ``change``: the whole pipeline for one connector (apply, undo, the wizard, the API);
- ``apply_plan``: its second half, for a plan made from a connector read under the lock;
- ``Change``: the backup and the audit entry of one plan, which bulk wraps around its own
  execution (many pipelines in flight on one shell, ``bulk.flights``);
- ``Outcome``: what a run did, its recap and its exit status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from remediate.core import interrupts
from remediate.core.errors import RemediateError, RemoteCommandError, RunRecap
from remediate.core.exchange import QueueInfo, SendConnector
from remediate.core.plan import CredentialRef, Plan, Step
from remediate.core.status import ExitStatus
from remediate.core.terminal import command_word
from remediate.remote.session import StepResult
from remediate.remote.wire import read_connectors, read_queues
from remediate.run import audit, backup
from remediate.run.execute import CredentialSource, ExecutionResult, StepCallback, describe, execute
from remediate.run.locks import ConnectorLocks, read_locked
from remediate.run.queue_watch import MailFlow, QueueVerdict, queues_in, watch

if TYPE_CHECKING:
    from remediate.remote.connections import Connection
    from remediate.remote.session import Session
    from remediate.run.backup import Backup

# "Mail flows" is success; "still fails" the status of a failed step; "not known" its own.
VERDICT_STATUS = {
    MailFlow.FLOWS: ExitStatus.SUCCESS,
    MailFlow.FAILS: ExitStatus.FAILED,
    MailFlow.UNKNOWN: ExitStatus.NOT_KNOWN,
}
# plan, connector as read under the lock -> the passwords to send (shows, asks, confirms;
# raises to stop with nothing sent)
Ready = Callable[[Plan, SendConnector], CredentialSource]


def verdict_status(verdict: QueueVerdict) -> ExitStatus:
    return VERDICT_STATUS[verdict.flow]


@dataclass(frozen=True)
class Outcome:
    """What one run of the pipeline did (in the way of black's ``Report``: it owns the
    recap and the exit status).

    ``changed`` is true only when Exchange changed something (not with -WhatIf);
    ``backup`` is the file ``undo`` takes (None when nothing was changed); ``summary`` says
    step by step what ran; ``verdict`` is the queue watch's, when the queues were watched.
    """

    plan: Plan
    before: SendConnector
    after: SendConnector
    result: ExecutionResult
    saved: Backup | None = None
    audit: Path | None = None
    verdict: QueueVerdict | None = None

    @classmethod
    def nothing_to_change(cls, plan: Plan, current: SendConnector) -> Outcome:
        return cls(plan, current, current, ExecutionResult(plan))

    @property
    def sent(self) -> bool:
        """Whether the plan was run (a plan with nothing to change is not)."""
        ran = self.result
        return bool(ran.results or ran.not_run or ran.interrupted is not None)

    @property
    def ok(self) -> bool:
        return self.result.ok

    @property
    def changed(self) -> bool:
        return bool(self.result.changed_steps) and not self.plan.what_if

    @property
    def backup(self) -> Path | None:
        return self.saved.path if self.saved is not None else None

    @property
    def notes(self) -> tuple[str, ...]:
        return self.plan.notes

    @property
    def summary(self) -> str:
        return self.result.summary() if self.sent else "Nothing to change."

    @property
    def exit_status(self) -> ExitStatus:
        """6 when a step failed; else the verdict's (0 mail flows, 6 still fails, 7 not
        known); 0 when the queues were not watched."""
        if not self.result.ok:
            return ExitStatus.FAILED
        return ExitStatus.SUCCESS if self.verdict is None else verdict_status(self.verdict)

    def recap(self) -> list[str]:
        """The step summary, then where the backup, the undo command and the audit went."""
        lines = [self.summary]
        if self.plan.what_if:
            lines.append(
                "What-if: nothing was changed, so no backup was taken and nothing was audited."
            )
        lines += backup_lines(self.backup)
        if self.audit is not None:
            lines.append(f"Audit log: {self.audit}")
        return lines


def backup_lines(path: Path | None) -> list[str]:
    if path is None:
        return []
    return [f"Backup: {path}", f"Undo:   remediate undo {command_word(str(path))}"]


class StepFailed(RemoteCommandError):
    """Exchange refused a step of the plan: ``outcome`` says what was applied before it and
    where the backup is."""

    def __init__(self, outcome: Outcome) -> None:
        failed = outcome.result.failed_step
        what = describe(failed.step) if failed is not None else "a step"
        message = (
            failed.errors[0].message
            if failed is not None and failed.errors
            else "failed without an error record"
        )
        super().__init__(
            f"{what} failed on '{outcome.plan.connector}': {message}",
            hint=f"backup: {outcome.backup}" if outcome.backup else None,
            recap=RunRecap(outcome.summary, outcome.backup),
        )
        self.outcome = outcome


@dataclass
class Change:
    """One plan's backup (before anything is sent) and audit entry (after), around an
    execution the caller runs: ``apply_plan`` runs it step by step, bulk with many
    pipelines in flight. A what-if plan, or one with nothing to change, is neither."""

    connection: Connection
    plan: Plan
    before: SendConnector
    environ: Mapping[str, str] | None = None
    script: bool = True  # bulk renders one undo script per run instead
    # bulk opens (and checks) the audit log once per run and appends to it here, and
    # checks the backup directory once per run
    audit_fd: int | None = None
    backup_directory: Path | None = None
    saved: Backup | None = field(default=None, init=False)

    @property
    def real(self) -> bool:
        return bool(self.plan.changes) and not self.plan.what_if

    def back_up(self) -> Backup | None:
        """Check the audit log can be written (a change it could not record is not made),
        then write the backup."""
        if self.real:
            if self.audit_fd is None:
                audit.check_log(self.environ)
            self.saved = backup.write_backup(
                self.connection, self.before, self.plan,
                environ=self.environ, script=self.script, directory=self.backup_directory,
            )  # fmt: skip
        return self.saved

    def record(self, result: ExecutionResult) -> Path | None:
        """The audit entry of the run (signals held while it is written)."""
        if not self.real:
            return None
        with interrupts.deferred():
            if self.audit_fd is not None:
                lines = audit.entries(
                    self.connection, self.plan, self.before, result, backup=self.saved
                )
                audit.append(self.audit_fd, lines)
                return audit.audit_path(self.environ)
            return audit.record(
                self.connection, self.plan, self.before, result,
                environ=self.environ, backup=self.saved,
            )  # fmt: skip


def change(
    session: Session,
    connection: Connection,
    connector: str,
    make_plan: Callable[[SendConnector], Plan],
    ready: Ready,
    *,
    locks: ConnectorLocks | None = None,
    on_step: StepCallback | None = None,
    environ: Mapping[str, str] | None = None,
) -> Outcome:
    """The whole pipeline for one connector: take its lock, read it, plan from what was
    read, let ``ready`` show the plan, confirm and give the passwords, then back up,
    execute, audit and re-read. ``locks``: the caller's, kept held afterwards (the wizard
    holds its connector to the end); else taken here and released at the end."""
    held = locks if locks is not None else ConnectorLocks(connection, environ)
    try:
        before = read_locked(held, lambda name: read_connector(session, name), connector)
        plan = make_plan(before)
        if not plan.changes:
            return Outcome.nothing_to_change(plan, before)
        credential = ready(plan, before)
        return apply_plan(
            session, plan, before, connection, credential,
            on_step=on_step, environ=environ, fresh=True,
        )  # fmt: skip
    finally:
        if locks is None:
            held.release()


def apply_plan(
    session: Session,
    plan: Plan,
    before: SendConnector,
    connection: Connection,
    credential: CredentialSource,
    *,
    on_step: StepCallback | None = None,
    environ: Mapping[str, str] | None = None,
    fresh: bool = False,
) -> Outcome:
    """Back up (only when the plan changes something for real), execute, audit, re-read.

    Passwords are resolved before the backup, so a missing secret stops the run before
    anything is written or changed. A run cut short (Ctrl-C, lost connection) is audited,
    then its error re-raised with its ``recap`` (the steps so far, the backup). ``fresh``:
    ``before`` was read just now under the lock, so the plan's own first read of it is
    answered from that read instead of being sent again.
    """
    serve = resolved_credentials(plan, credential)
    pending = Change(connection, plan, before, environ)
    pending.back_up()
    result = ExecutionResult(plan)
    known = _answered_by(before, plan) if fresh else None
    try:
        execute(session, plan, serve, on_step=on_step, into=result, known=known)
    except RemediateError as stopped:
        pending.record(result)
        stopped.recap = RunRecap(result.summary(), pending.saved.path if pending.saved else None)
        raise
    audit_path = pending.record(result)
    after = _read_back(session, plan.connector, result)
    return Outcome(plan, before, after, result, pending.saved, audit_path)


def watch_queues(
    session: Session, outcome: Outcome, wait: float, say: Callable[[str], None]
) -> Outcome:
    """The outcome with the queue verdict: the connector's queues on every source server
    watched after Retry-Queue (retrying while Exchange has not yet picked up the change),
    the plan's own read after the retry as the first look."""
    verdict = watch(
        session,
        outcome.after,
        queues_read(outcome.result, after_change=False),
        wait,
        say=say,
        seen=queues_read(outcome.result, after_change=True) or None,
    )
    return replace(outcome, verdict=verdict)


def resolved_credentials(plan: Plan, credential: CredentialSource) -> CredentialSource:
    """Every password the plan needs, asked for now (before anything changes), then served
    from memory."""
    secrets = {ref: credential(ref) for ref in plan.credentials}

    def serve(ref: CredentialRef) -> str:
        return secrets[ref] if ref in secrets else credential(ref)

    return serve


def read_connector(session: Session, name: str, *, when: str = "") -> SendConnector:
    """The one connector named; RemoteCommandError when Exchange has none."""
    connectors = session.get_connectors(name)
    if not connectors:
        raise RemoteCommandError(f"Send connector '{name}' not found{when}")
    return connectors[0]


def queues_read(result: ExecutionResult, *, after_change: bool) -> list[QueueInfo]:
    """The queues the plan's Get-Queue steps read before its first change (or after its
    last one), one per identity."""
    found: list[QueueInfo] = []
    changes = [i for i, r in enumerate(result.results) if r.step.is_change]
    if after_change:
        steps = result.results[changes[-1] + 1 :] if changes else []
    else:
        steps = result.results[: changes[0]] if changes else result.results
    for ran in steps:
        if ran.step.cmdlet == "Get-Queue" and ran.ok:
            found += read_queues(ran.output)
    return queues_in(found)


def _answered_by(before: SendConnector, plan: Plan) -> Callable[[Step], StepResult | None]:
    """The plan's ``Get-SendConnector -Identity NAME`` before its first change, answered
    with the connector just read under the lock (the read is not sent twice)."""
    names = {before.name.lower(), before.guid.lower()} - {""}
    first = next((i for i, s in enumerate(plan.steps) if s.is_change), len(plan.steps))
    early = {id(s) for s in plan.steps[:first]}

    def known(step: Step) -> StepResult | None:
        params = {p.name.lower(): p.value for p in step.parameters}
        identity = params.get("identity")
        if (
            id(step) in early
            and step.cmdlet.lower() == "get-sendconnector"
            and set(params) == {"identity"}
            and isinstance(identity, str)
            and identity.lower() in names
        ):
            return StepResult(step, True, [before.to_json()], [], [], [])
        return None

    return known


def _read_back(session: Session, name: str, result: ExecutionResult) -> SendConnector:
    """The connector after the run: the plan's own read-back when it ran after the last
    change of the connector, else read again."""
    ran = result.results
    last = max((i for i, r in enumerate(ran) if _changes_connector(r.step)), default=-1)
    for read in reversed(ran[last + 1 :]):
        if read.ok and read.step.cmdlet.lower() == "get-sendconnector":
            connectors, unreadable = read_connectors(read.output)
            named = [c for c in connectors if c.name.lower() == name.lower()]
            if len(connectors) == 1 and named and not unreadable:
                return named[0]
    return read_connector(session, name, when=" when read back")


def _changes_connector(step: Step) -> bool:
    return step.is_change and step.cmdlet.lower().endswith("sendconnector")
