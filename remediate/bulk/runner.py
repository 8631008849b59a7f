"""Read and apply per endpoint: endpoints in parallel (bounded), one Session (one runspace
pool) per endpoint, that endpoint's connectors in sequence.

Passwords are resolved by the caller in the main thread before workers start. Ctrl-C only
reaches the main thread: ``stop()`` sets an event that workers check before every step, so
each endpoint stops after the step in flight and reports the rest as skipped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from remediate import interrupts
from remediate.bulk.diff import Target, Unmatched, plan_endpoint
from remediate.bulk.spec import BulkSpec, Row
from remediate.errors import ConnectionFailed, RemediateError
from remediate.locks import ConnectorLocks

if TYPE_CHECKING:
    from remediate.connections import Connection
    from remediate.exchange import SendConnector
    from remediate.executor import CredentialSource, ExecutionResult
    from remediate.plan import Step
    from remediate.remote import Session, StepResult

T = TypeVar("T")


class Status(StrEnum):
    OK = "ok"
    CHANGED = "changed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class ConnectorOutcome:
    connector: str
    line: int
    status: Status
    message: str = ""
    changes: list[str] = field(default_factory=list)
    backup: Path | None = None
    undo_script: Path | None = None
    audit: Path | None = None


@dataclass
class EndpointState:
    """One endpoint after the read: its open session and the plans, or why not."""

    endpoint: Connection
    rows: list[Row]
    session: Session | None = None
    targets: list[Target] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)
    error: str | None = None
    outcomes: list[ConnectorOutcome] = field(default_factory=list)

    @property
    def pending(self) -> list[Target]:
        return [t for t in self.targets if t.pending]

    @property
    def status(self) -> Status:
        """Failed when it could not be read, else its connectors' worst status (failed >
        skipped > changed > ok)."""
        if self.error is not None:
            return Status.FAILED
        statuses = {o.status for o in self.outcomes}
        for status in (Status.FAILED, Status.SKIPPED, Status.CHANGED):
            if status in statuses:
                return status
        return Status.OK


SessionFactory = Callable[["Connection", "str | None"], "Session"]
# rows of one endpoint + its connectors -> targets (with plans) and rows that matched nothing
Planner = Callable[[list[Row], list["SendConnector"]], tuple[list[Target], list[Unmatched]]]
Progress = Callable[[EndpointState, ConnectorOutcome], None]


def default_session(connection: Connection, password: str | None) -> Session:
    from remediate.remote import Session

    return Session(connection, password)


class BulkRun:
    def __init__(
        self,
        spec: BulkSpec,
        passwords: Mapping[Connection, str | None],
        *,
        parallel: int = 4,
        environ: Mapping[str, str] | None = None,
        session_factory: SessionFactory = default_session,
        planner: Planner = plan_endpoint,
        lock: bool = False,
    ) -> None:
        self.spec = spec
        self.passwords = passwords
        self.parallel = max(1, parallel)
        self.environ = environ
        self.session_factory = session_factory
        self.planner = planner
        self.lock = lock  # apply: hold each connector's lock, and plan again under it
        self.states = [EndpointState(e, spec.rows_for(e)) for e in spec.endpoints()]
        self._stop = threading.Event()

    # --- control ---------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        for state in self.states:
            if state.session is not None:
                state.session.close()
                state.session = None

    def __enter__(self) -> BulkRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- phases ----------------------------------------------------------------------------

    def read(self) -> list[EndpointState]:
        """Open one session per endpoint, read its connectors once, plan every row."""
        self._each(self._read_one)
        return self.states

    def apply(self, credential: CredentialSource, progress: Progress | None = None) -> None:
        """Apply the pending plans; outcomes land in each state's ``outcomes``."""
        self._each(lambda state: self._apply_one(state, credential, progress))

    def _each(self, work: Callable[[EndpointState], None]) -> None:
        """Run ``work`` per endpoint on a bounded pool; Ctrl-C sets the stop flag and waits
        for the workers to finish their step in flight."""
        with ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="bulk") as pool:
            submitted = [pool.submit(work, s) for s in self.states]
            running: set[Future[None]] = set(submitted)
            while running:
                try:
                    _, running = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                except KeyboardInterrupt:
                    self.stop()
        for future in submitted:  # a bug in a worker is not to be reported as "ok"
            future.result()

    def _read_one(self, state: EndpointState) -> None:
        if self.stopped:
            state.error = f"not read: interrupted ({interrupts.reason()})"
            return
        try:
            session = self.session_factory(state.endpoint, self.passwords.get(state.endpoint))
            state.session = session
            session.open()
            connectors = session.get_connectors()
        except RemediateError as exc:
            state.error = exc.message
            self._close(state)
            return
        state.targets, state.unmatched = self.planner(state.rows, connectors)

    def _apply_one(
        self, state: EndpointState, credential: CredentialSource, progress: Progress | None
    ) -> None:
        def done(outcome: ConnectorOutcome) -> None:
            state.outcomes.append(outcome)
            if progress is not None:
                progress(state, outcome)

        if state.error is not None:
            for row in state.rows:
                done(ConnectorOutcome(row.target, row.line, Status.SKIPPED, state.error))
            return
        locks = ConnectorLocks(state.endpoint, self.environ)
        try:
            self._apply_locked(state, credential, done, locks)
        finally:
            locks.release()

    def _apply_locked(
        self,
        state: EndpointState,
        credential: CredentialSource,
        done: Callable[[ConnectorOutcome], None],
        locks: ConnectorLocks,
    ) -> None:
        refused = self._lock_and_reread(state, locks) if self.lock else None
        for unmatched in state.unmatched:
            done(
                ConnectorOutcome(
                    unmatched.row.target, unmatched.row.line, Status.FAILED, unmatched.message
                )
            )
        lost: str | None = None
        for target in state.targets:
            if refused is not None and target.pending:
                done(_outcome(target, Status.FAILED, f"not sent: {refused}"))
            elif self.stopped:
                reason = f"not run: interrupted ({interrupts.reason()})"
                done(_outcome(target, Status.SKIPPED, reason))
            elif lost is not None:
                done(_outcome(target, Status.SKIPPED, f"not run: {lost}"))
            elif target.error is not None:
                done(_outcome(target, Status.FAILED, target.error))
            elif not target.pending:
                done(_outcome(target, Status.OK, "already as wanted"))
            else:
                outcome = self._change(state, target, credential)
                if outcome.status is Status.FAILED and state.session is None:
                    lost = "the connection to the endpoint was lost"
                done(outcome)

    def _lock_and_reread(self, state: EndpointState, locks: ConnectorLocks) -> str | None:
        """Lock the connectors to change, then read and plan again under the locks (another
        run may have changed them since the first read); None, or why nothing is sent."""
        if not state.pending or state.session is None or self.stopped:
            return None
        try:
            locks.acquire(t.name for t in state.pending)
            targets, unmatched = self.planner(state.rows, state.session.get_connectors())
            locks.acquire(t.name for t in targets if t.pending)
        except RemediateError as exc:
            locks.release()
            return exc.message
        state.targets, state.unmatched = targets, unmatched
        return None

    def _change(
        self, state: EndpointState, target: Target, credential: CredentialSource
    ) -> ConnectorOutcome:
        """Back up, run the plan, audit: one connector."""
        from remediate import audit, backup
        from remediate.executor import ExecutionInterrupted, ExecutionResult, execute

        assert target.plan is not None and state.session is not None
        plan, endpoint = target.plan, state.endpoint
        try:
            audit.check_log(self.environ)
            saved = backup.write_backup(endpoint, target.before, plan, environ=self.environ)
        except OSError as exc:
            reason = f"not sent: the backup could not be written ({exc.strerror or exc})"
            return _outcome(target, Status.FAILED, reason)
        except RemediateError as exc:  # a planted symbolic link, a directory not ours
            return _outcome(target, Status.FAILED, f"not sent: {exc.message}")
        lost: str | None = None
        problem: str | None = None
        ran: list[StepResult] = []

        def check_stop(step: Step, result: StepResult) -> None:
            ran.append(result)
            if self.stopped:
                raise KeyboardInterrupt

        try:
            result: ExecutionResult = execute(state.session, plan, credential, on_step=check_stop)
        except ExecutionInterrupted as stopped:
            result = stopped.result
        except ConnectionFailed as exc:
            lost = exc.message
            rest = list(plan.steps[len(ran) :])
            result = ExecutionResult(plan, ran, rest[1:], interrupted=rest[0] if rest else None)
            self._close(state)
        except RemediateError as exc:  # before sending: a password missing, a locked keyring
            problem = exc.message
            result = ExecutionResult(plan, ran, list(plan.steps[len(ran) :]))
        audit_path = audit.record(
            endpoint, plan, target.before, result, environ=self.environ, backup=saved
        )
        outcome = _outcome(target, Status.CHANGED, "")
        outcome.backup, outcome.undo_script, outcome.audit = saved.path, saved.script, audit_path
        if lost is not None:
            outcome.status = Status.FAILED
            outcome.message = f"{lost} (the change may or may not have been applied)"
        elif problem is not None:
            outcome.status, outcome.message = Status.FAILED, problem
        elif result.ok:
            if not result.changed_steps:
                outcome.status, outcome.message = Status.OK, "Exchange reported nothing to change"
        else:
            outcome.status = Status.FAILED if result.failed_step else Status.SKIPPED
            outcome.message = result.headline()
            failed = result.failed_step
            if failed is not None and failed.errors:
                outcome.message = f"refused by Exchange: {failed.errors[0].message}"
        return outcome

    @staticmethod
    def _close(state: EndpointState) -> None:
        if state.session is not None:
            state.session.close()
            state.session = None


def _outcome(target: Target, status: Status, message: str) -> ConnectorOutcome:
    changes = [name for name, _, _ in target.changes()] if target.pending else []
    return ConnectorOutcome(target.name, target.row.line, status, message, changes)
