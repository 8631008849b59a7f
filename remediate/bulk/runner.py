"""Read and apply per endpoint: endpoints in parallel (bounded), one Session (one runspace
pool) per endpoint, that endpoint's connectors with up to ``in_flight`` pipelines at once
(``flights.Driver``), each connector with its own backup (one JSON file), audit entry, result
and error; one undo script for the whole run, rendered once at the end.

Sessions are opened and read through ``remediate.api``; each connector's backup and audit
entry are the apply pipeline's (``pipeline.Change``) around the flights' execution.
Passwords are resolved by the caller in the main thread before workers start. Ctrl-C only
reaches the main thread: ``stop()`` sets an event that workers check before every step, so
each endpoint stops after the step in flight and reports the rest as skipped.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from remediate import api
from remediate.bulk.diff import Target, Unmatched, plan_endpoint
from remediate.bulk.flights import Driver, Flight
from remediate.bulk.spec import BulkSpec, Row
from remediate.core import interrupts
from remediate.core.errors import RemediateError
from remediate.core.files import write_file
from remediate.core.status import ExitStatus
from remediate.render.script import render_script
from remediate.run import audit
from remediate.run.backup import backup_dir, checked_backup_dir
from remediate.run.locks import ConnectorLocks
from remediate.run.pipeline import Change

if TYPE_CHECKING:
    from remediate.bulk.flights import Flight
    from remediate.core.exchange import SendConnector
    from remediate.remote.connections import Connection
    from remediate.remote.hosting import ShellHost
    from remediate.remote.session import Session
    from remediate.run.backup import Backup
    from remediate.run.execute import CredentialSource, ExecutionResult


log = logging.getLogger(__name__)


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
    locks: ConnectorLocks | None = None  # apply: held from before the read to the end

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

    @property
    def exit_status(self) -> ExitStatus:
        """As for one connector's run (``pipeline.Outcome``): 6 when a connector failed or
        was skipped, else 0. Bulk does not watch queues, so no verdict enters it."""
        failed = any(o.status in (Status.FAILED, Status.SKIPPED) for o in self.outcomes)
        return ExitStatus.FAILED if failed else ExitStatus.SUCCESS


# Pipelines in flight at once per endpoint, one shell with this many runspaces: one shell per
# endpoint stays far under PowerShellMaxConcurrency (18 shells per user), and Exchange's
# budget of commands per shell is recycled before it is reached (remote.COMMANDS_PER_SHELL).
IN_FLIGHT = 8
# rows of one endpoint + its connectors -> targets (with plans) and rows that matched nothing
Planner = Callable[[list[Row], list["SendConnector"]], tuple[list[Target], list[Unmatched]]]
Progress = Callable[[EndpointState, ConnectorOutcome], None]


class BulkRun:
    def __init__(
        self,
        spec: BulkSpec,
        passwords: Mapping[Connection, str | None],
        *,
        parallel: int = 4,
        in_flight: int = IN_FLIGHT,
        environ: Mapping[str, str] | None = None,
        warn: Callable[[str], None] | None = None,
        planner: Planner = plan_endpoint,
        lock: bool = False,
        processes: int = 0,
    ) -> None:
        self.spec = spec
        self.passwords = passwords
        self.parallel = max(1, parallel)
        self.in_flight = max(1, in_flight)
        self.backups: list[tuple[EndpointState, Target, Backup]] = []
        self.environ = environ
        self.warn = warn  # the sessions' warnings (Basic over http, an unreadable connector)
        self.planner = planner
        self.lock = lock  # apply: hold each connector's lock, and plan again under it
        self.processes = max(0, processes)  # worker processes running the shells (0: none)
        self._hosts: list[ShellHost] = []
        self.states = [EndpointState(e, spec.rows_for(e)) for e in spec.endpoints()]
        self._stop = threading.Event()
        self._audit_fd: int | None = None  # the audit log, open for the whole run
        self._backup_dir: Path | None = None  # checked once per run
        self._audit_lock = threading.Lock()

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
            if state.locks is not None:
                state.locks.release()
                state.locks = None
        hosts, self._hosts = self._hosts, []
        for host in hosts:  # after their shells closed
            host.close()
        with self._audit_lock:
            if self._audit_fd is not None:
                os.close(self._audit_fd)
                self._audit_fd = None

    def __enter__(self) -> BulkRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- phases ----------------------------------------------------------------------------

    def read(self) -> list[EndpointState]:
        """Open one session per endpoint, read its connectors once, plan every row. With
        ``processes``, the shells run in that many worker processes, started here before
        any thread (``remote.hosting``), the endpoints shared among them in turn."""
        if self.processes and not self._hosts:
            self._hosts = api.start_hosts(min(self.processes, len(self.states)))
            pids = ", ".join(str(h.pid) for h in self._hosts)
            how = self._hosts[0].start_method
            count = len(self._hosts)
            log.info("the shells run in %d worker process(es) (%s), pid %s", count, how, pids)
        self._each(self._read_one)
        return self.states

    def apply(
        self,
        credential: CredentialSource,
        progress: Progress | None = None,
        *,
        read_again: bool = False,
    ) -> None:
        """Apply the pending plans; outcomes land in each state's ``outcomes``.
        ``read_again``: read and plan again under the locks first (time has passed since the
        read, an admin was asked); else the read taken under the locks stands."""
        self._each(lambda state: self._apply_one(state, credential, progress, read_again))

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
        if self.lock:
            self._lock_named(state)
        try:
            handle = api.connect(
                state.endpoint, password=self.passwords.get(state.endpoint),
                environ=self.environ, warn=self.warn, runspaces=self.in_flight,
                host=self._host_for(state),
            )  # fmt: skip
            state.session = handle.session
            connectors = api.read_connectors(handle)
        except RemediateError as exc:
            state.error = exc.message
            self._close(state)
            return
        state.targets, state.unmatched = self.planner(state.rows, connectors)

    def _host_for(self, state: EndpointState) -> ShellHost | None:
        if not self._hosts:
            return None
        number = next(n for n, each in enumerate(self.states) if each is state)
        return self._hosts[number % len(self._hosts)]

    def _lock_named(self, state: EndpointState) -> None:
        """Lock the connectors the rows name before the read, so that read can plan the
        change (apply holds a connector's lock from the read that plans it). Without waiting:
        a connector another run holds is left to ``_lock_and_reread``, which waits and
        refuses as one connector's failure."""

        state.locks = ConnectorLocks(state.endpoint, self.environ)
        named = [row.connector for row in state.rows if row.connector is not None]
        try:
            state.locks.acquire(named, wait=0)
        except RemediateError:
            state.locks.release()

    def _apply_one(
        self,
        state: EndpointState,
        credential: CredentialSource,
        progress: Progress | None,
        read_again: bool = False,
    ) -> None:
        def done(outcome: ConnectorOutcome) -> None:
            state.outcomes.append(outcome)
            if progress is not None:
                progress(state, outcome)

        if state.error is not None:
            for row in state.rows:
                done(ConnectorOutcome(row.target, row.line, Status.SKIPPED, state.error))
            return
        locks = state.locks or ConnectorLocks(state.endpoint, self.environ)
        try:
            self._apply_locked(state, credential, done, locks, read_again)
        finally:
            locks.release()
            state.locks = None

    def _apply_locked(
        self,
        state: EndpointState,
        credential: CredentialSource,
        done: Callable[[ConnectorOutcome], None],
        locks: ConnectorLocks,
        read_again: bool,
    ) -> None:
        refused = self._lock_and_reread(state, locks, read_again) if self.lock else None
        for unmatched in state.unmatched:
            done(
                ConnectorOutcome(
                    unmatched.row.target, unmatched.row.line, Status.FAILED, unmatched.message
                )
            )
        changes: list[Target] = []
        for target in state.targets:
            if refused is not None and target.pending:
                done(_outcome(target, Status.FAILED, f"not sent: {refused}"))
            elif target.error is not None:
                done(_outcome(target, Status.FAILED, target.error))
            elif not target.pending:
                done(_outcome(target, Status.OK, "already as wanted"))
            else:
                changes.append(target)
        if not changes:
            return
        if state.session is None:
            for target in changes:
                done(_outcome(target, Status.SKIPPED, "not run: the endpoint is not connected"))
            return
        self._fly(state, changes, credential, done)

    def _fly(
        self,
        state: EndpointState,
        changes: list[Target],
        credential: CredentialSource,
        done: Callable[[ConnectorOutcome], None],
    ) -> None:
        """Back up and change ``changes`` with up to ``in_flight`` pipelines at once."""

        assert state.session is not None
        started: set[int] = set()
        changes_of: dict[int, Change] = {}

        def source() -> Iterator[Flight | None]:
            for target in changes:
                if self.stopped:
                    return
                started.add(id(target))
                saved = self._backup(state, target)
                if isinstance(saved, ConnectorOutcome):
                    done(saved)
                    yield None
                    continue
                changes_of[id(target)] = saved
                assert target.plan is not None
                yield Flight(target.plan, target)

        def finished(flight: Flight, result: ExecutionResult) -> None:
            target = flight.key
            assert isinstance(target, Target)
            done(self._record(state, target, changes_of[id(target)], flight, result))

        driver = Driver(state.session, credential, self.in_flight, lambda: self.stopped)
        driver.run(source(), finished)
        reason = (
            f"the connection to the endpoint was lost ({driver.lost})"
            if driver.lost is not None
            else f"interrupted ({interrupts.reason()})"
        )
        for target in changes:
            if id(target) not in started:
                done(_outcome(target, Status.SKIPPED, f"not run: {reason}"))
        if driver.lost is not None:
            self._close(state)

    def _lock_and_reread(
        self, state: EndpointState, locks: ConnectorLocks, read_again: bool
    ) -> str | None:
        """Lock the connectors to change, then read and plan again under the locks (another
        run may have changed them since the first read), unless the first read was already
        under their locks and ``read_again`` is False; None, or why nothing is sent."""
        if not state.pending or state.session is None or self.stopped:
            return None
        if not read_again and locks.holds(t.name for t in state.pending):
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

    def _backup(self, state: EndpointState, target: Target) -> Change | ConnectorOutcome:
        """The connector's backup, written before anything is sent (the pipeline's first
        half; its execution is the flights'); else why not."""
        assert target.plan is not None
        try:
            change = Change(
                state.endpoint, target.plan, target.before, self.environ,
                script=False, audit_fd=self._audit_log(), backup_directory=self._backups(),
            )  # fmt: skip
            change.back_up()
        except OSError as exc:
            reason = f"not sent: the backup could not be written ({exc.strerror or exc})"
            return _outcome(target, Status.FAILED, reason)
        except RemediateError as exc:  # a planted symbolic link, a directory not ours
            return _outcome(target, Status.FAILED, f"not sent: {exc.message}")
        return change

    def _record(
        self,
        state: EndpointState,
        target: Target,
        change: Change,
        flight: Flight,
        result: ExecutionResult,
    ) -> ConnectorOutcome:
        """Audit one connector's run (the pipeline's second half) and say how it ended."""
        audit_path = change.record(result)
        saved = change.saved
        assert saved is not None  # a bulk target always changes something for real
        self.backups.append((state, target, saved))
        outcome = _outcome(target, Status.CHANGED, "")
        outcome.backup, outcome.audit = saved.path, audit_path
        if flight.lost is not None:
            outcome.status = Status.FAILED
            outcome.message = f"{flight.lost} (the change may or may not have been applied)"
        elif flight.problem is not None:
            outcome.status, outcome.message = Status.FAILED, flight.problem
            if flight.problem.startswith("not run:"):
                outcome.status = Status.SKIPPED
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

    def write_undo_script(self) -> Path | None:
        """One undo script for every connector this run backed up (rendered once, at the
        end, instead of once per connector); each outcome with a backup points to it."""

        if not self.backups:
            return None
        now = datetime.now(UTC)
        parts = [
            "# remediate bulk apply: undo, one section per connector changed; run each\n"
            "# endpoint's sections in the Exchange Management Shell of that organisation.\n"
        ]
        for state, target, saved in self.backups:
            parts.append(f"\n# ===== {state.endpoint.label}: {target.name} =====\n")
            parts.append(render_script(saved.undo_plan(), now, actions=target.row.playbook.actions))
        path = backup_dir(self.environ) / f"{now:%Y%m%dT%H%M%S%fZ}-bulk-undo.ps1"
        write_file(path, "".join(parts), what="the undo script", private=True)
        paths = {saved.path for _, _, saved in self.backups}
        for state in self.states:
            for outcome in state.outcomes:
                if outcome.backup in paths:
                    outcome.undo_script = path
        return path

    def _backups(self) -> Path:
        """The backup directory, checked (private, ours, no symbolic link) once per run."""
        with self._audit_lock:
            if self._backup_dir is None:
                self._backup_dir = checked_backup_dir(self.environ)
            return self._backup_dir

    def _audit_log(self) -> int:
        """The audit log, opened (and checked: private, no symbolic link) once per run."""

        with self._audit_lock:
            if self._audit_fd is None:
                _, self._audit_fd = audit.open_log(self.environ)
            return self._audit_fd

    @staticmethod
    def _close(state: EndpointState) -> None:
        if state.session is not None:
            state.session.close()
            state.session = None


def _outcome(target: Target, status: Status, message: str) -> ConnectorOutcome:
    changes = [name for name, _, _ in target.changes()] if target.pending else []
    return ConnectorOutcome(target.name, target.row.line, status, message, changes)
