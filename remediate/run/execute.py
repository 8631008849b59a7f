"""Run a plan's steps in order over a Session and say exactly what happened.

A failed step stops the steps after it (for a change: the connector's remaining changes are
not sent). Ctrl-C (or SIGTERM/SIGHUP) between or during steps stops the run and raises
``ExecutionInterrupted`` whose message is the summary. ``apply_plan`` is the one UI-free
entry point that apply, the wizard and bulk share: backup, execute, audit, re-read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from remediate.core import interrupts
from remediate.core.errors import Interrupted, RemediateError, RemoteCommandError
from remediate.core.exchange import SendConnector
from remediate.core.plan import CredentialRef, Plan, Step

if TYPE_CHECKING:
    from remediate.remote.connections import Connection
    from remediate.remote.session import Session, StepResult
    from remediate.run.backup import Backup

CredentialSource = Callable[[CredentialRef], str]
StepCallback = Callable[[Step, "StepResult"], None]

# Exchange's warning when Set-* was given values the object already has.
NOTHING_MODIFIED = "no settings of"


def describe(step: Step) -> str:
    """A step as "Cmdlet -Param -Param" (names only: values may be long, never secrets)."""
    names = [p.name for p in step.parameters if p.name not in ("Confirm", "WhatIf", "Identity")]
    return " ".join([step.cmdlet, *(f"-{name}" for name in names)])


def changed_something(result: StepResult) -> bool:
    """A change step that ran, without -WhatIf, and Exchange did not report "no settings
    modified"."""
    return result.changed and not any(NOTHING_MODIFIED in w.lower() for w in result.warnings)


@dataclass
class ExecutionResult:
    """The steps that ran (with their results), the step in flight when the run was cut
    short (Ctrl-C or a lost connection: ``stopped_by`` says which) and the steps never sent."""

    plan: Plan
    results: list[StepResult] = field(default_factory=list)
    not_run: list[Step] = field(default_factory=list)
    interrupted: Step | None = None
    stopped_by: str = ""

    @property
    def ok(self) -> bool:
        return self.interrupted is None and not self.not_run and all(r.ok for r in self.results)

    @property
    def changed_steps(self) -> list[Step]:
        return [r.step for r in self.results if changed_something(r)]

    @property
    def failed_step(self) -> StepResult | None:
        return next((r for r in self.results if not r.ok), None)

    def summary(self) -> str:
        """Exactly what was and was not applied, one line per step."""
        steps = list(self.plan.steps)
        lines = []
        for result in self.results:
            lines.append(
                f"  {_number(steps, result.step)}. {describe(result.step)}: {_state(result)}"
            )
        if self.interrupted is not None:
            lines.append(
                f"  {_number(steps, self.interrupted)}. {describe(self.interrupted)}: "
                f"cut short by {self.stopped_by} while sent (it may or may not have been "
                "applied: check the connector)"
            )
        for step in self.not_run:
            lines.append(f"  {_number(steps, step)}. {describe(step)}: not run")
        return "\n".join([self.headline(), *lines])

    def headline(self) -> str:
        changed = len(self.changed_steps)
        if self.interrupted is not None or self.stopped_by:
            return (
                f"Stopped by {self.stopped_by}: {changed} change(s) applied before it; "
                f"{len(self.not_run)} step(s) not run."
            )
        failed = self.failed_step
        if failed is not None:
            return (
                f"Stopped at a failed step ({describe(failed.step)}): {changed} change(s) "
                f"applied before it, {len(self.not_run)} step(s) not run."
            )
        if self.plan.what_if:
            return "What-if run: nothing was changed."
        return f"All {len(self.results)} step(s) ran; {changed} changed the connector or queue."


def _number(steps: list[Step], step: Step) -> int:
    return next(i for i, s in enumerate(steps, start=1) if s is step)


def _state(result: StepResult) -> str:
    if not result.ok:
        message = result.errors[0].message if result.errors else "failed without an error record"
        return f"FAILED ({message})"
    if not result.step.is_change:
        return "ran (read)"
    if result.step.has_param("WhatIf"):
        return "ran with -WhatIf, changed nothing"
    return "ran, changed" if changed_something(result) else "ran, unchanged (no settings modified)"


class ExecutionInterrupted(Interrupted):
    """Ctrl-C stopped the run; ``result`` says what was applied."""

    def __init__(self, result: ExecutionResult) -> None:
        super().__init__(result.summary())
        self.result = result


def attach_result(exc: RemediateError, result: ExecutionResult) -> None:
    """Make ``exc`` carry the run so far: ``exc.result``, and the summary in its hint."""
    exc.result = result  # type: ignore[attr-defined]
    exc.hint = "\n".join(filter(None, [exc.hint, result.summary()]))


def execute(
    session: Session,
    plan: Plan,
    credential: CredentialSource,
    *,
    on_step: StepCallback | None = None,
) -> ExecutionResult:
    """Send the steps in order; the first failed step stops the rest."""
    result = ExecutionResult(plan)
    pending = list(plan.steps)
    while pending:
        step = pending.pop(0)
        try:
            step_result = session.run(step, credential)
        except KeyboardInterrupt:
            result.interrupted, result.not_run = step, pending
            result.stopped_by = interrupts.reason()
            raise ExecutionInterrupted(result) from None
        except RemediateError as exc:  # the connection was lost, or a secret was unavailable
            result.interrupted, result.not_run = step, pending
            result.stopped_by = f"an error ({exc.message})"
            attach_result(exc, result)
            raise
        result.results.append(step_result)
        try:
            if on_step is not None:
                on_step(step, step_result)
        except KeyboardInterrupt:
            result.not_run, result.stopped_by = pending, interrupts.reason()
            raise ExecutionInterrupted(result) from None
        if not step_result.ok:
            result.not_run = pending
            break
    return result


@dataclass
class Applied:
    result: ExecutionResult
    backup: Backup | None
    audit_path: Path | None
    after: SendConnector


def resolved_credentials(plan: Plan, credential: CredentialSource) -> CredentialSource:
    """Every password the plan needs, asked for now (before anything changes), then served
    from memory."""
    secrets = {ref: credential(ref) for ref in plan.credentials}

    def serve(ref: CredentialRef) -> str:
        return secrets[ref] if ref in secrets else credential(ref)

    return serve


def apply_plan(
    session: Session,
    plan: Plan,
    before: SendConnector,
    connection: Connection,
    credential: CredentialSource,
    *,
    on_step: StepCallback | None = None,
    environ: Mapping[str, str] | None = None,
) -> Applied:
    """Back up (only when the plan changes something for real), execute, audit, re-read.

    Passwords are resolved before the backup, so a missing secret stops the run before
    anything is written or changed. A run cut short (Ctrl-C, lost connection) is audited,
    then its error re-raised carrying ``result`` and ``backup``.
    """
    from remediate.run import audit, backup

    serve = resolved_credentials(plan, credential)
    real_change = bool(plan.changes) and not plan.what_if
    saved = None
    if real_change:
        audit.check_log(environ)  # a change the log could not record is not made
        saved = backup.write_backup(connection, before, plan, environ=environ)
    try:
        result = execute(session, plan, serve, on_step=on_step)
    except RemediateError as stopped:
        partial = getattr(stopped, "result", None)
        if real_change and isinstance(partial, ExecutionResult):
            with interrupts.deferred():
                audit.record(connection, plan, before, partial, environ=environ, backup=saved)
        stopped.backup = saved  # type: ignore[attr-defined]
        raise
    audit_path = None
    if real_change:
        with interrupts.deferred():
            audit_path = audit.record(
                connection, plan, before, result, environ=environ, backup=saved
            )
    return Applied(result, saved, audit_path, reread(session, plan.connector))


def reread(session: Session, name: str) -> SendConnector:
    connectors = session.get_connectors(name)
    if not connectors:
        raise RemoteCommandError(f"Send connector '{name}' not found when read back")
    return connectors[0]
