"""One endpoint's changes with several pipelines in flight at once over one Session.

Each connector is a ``Flight``: its plan's steps in order, one pipeline at a time (a failed
step stops that connector's later steps, as ``executor.execute`` does). Up to ``width``
connectors have a step running at once in the session's RunspacePool; the driver is one
thread that sends with ``Session.begin`` and collects with ``Session.finish``, oldest first,
so one HTTP connection (and one NTLM context) serves them all. Before the shell's command
quota is reached, the flights in flight finish their step, the session opens a new shell,
and the waiting flights go on there.

Each flight keeps its own results: an error record, a lost connection or a missing password
concerns that connector only (a lost connection concerns every connector in flight on it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from remediate.core import interrupts
from remediate.core.errors import ConnectionFailed, RemediateError
from remediate.remote.session import ShellQuotaReached
from remediate.run.execute import CredentialSource, ExecutionResult

if TYPE_CHECKING:
    from remediate.core.plan import Plan, Step
    from remediate.remote.session import Pending, Session, StepResult


@dataclass
class Flight:
    """One connector's plan on its way through the session."""

    plan: Plan
    key: object  # the caller's handle (its target)
    results: list[StepResult] = field(default_factory=list)
    sent: Pending | None = None
    lost: str | None = None  # the connection dropped while a step was in flight
    problem: str | None = None  # a step could not be sent (a password unavailable)

    @property
    def next_step(self) -> Step | None:
        done = len(self.results)
        return self.plan.steps[done] if done < len(self.plan.steps) else None

    def result(self, stopped: bool) -> ExecutionResult:
        done = len(self.results)
        rest = list(self.plan.steps[done:])
        result = ExecutionResult(self.plan, list(self.results))
        if self.lost is not None:
            result.interrupted, result.not_run = (rest[0] if rest else None), rest[1:]
            result.stopped_by = f"an error ({self.lost})"
        elif self.problem is not None or (result.failed_step is not None):
            result.not_run = rest
        elif rest and stopped:
            result.not_run, result.stopped_by = rest, interrupts.reason()
        return result


Finished = Callable[[Flight, ExecutionResult], None]


@dataclass
class Driver:
    session: Session
    credential: CredentialSource
    width: int
    stopped: Callable[[], bool]
    _flying: deque[Flight] = field(default_factory=deque)
    _waiting: list[Flight] = field(default_factory=list)  # for the next shell
    lost: str | None = None

    def run(self, flights: Iterator[Flight | None], finished: Finished) -> None:
        """Fly every flight ``flights`` yields (None: the caller handled that one) until the
        source is empty, the run is stopped or the connection is lost."""
        source_done = False
        while True:
            while (
                not source_done
                and len(self._flying) + len(self._waiting) < self.width
                and self.lost is None
                and not self.stopped()
            ):
                flight = next(flights, StopIteration)
                if flight is StopIteration:
                    source_done = True
                elif flight is not None:
                    assert isinstance(flight, Flight)
                    self._send(flight, finished)
            if not self._flying:
                if self._waiting and self.lost is None and not self.stopped():
                    self._new_shell(finished)
                    continue
                for flight in self._waiting:  # stopped or lost before their next step
                    if self.lost is not None:
                        flight.problem = f"not run: {self.lost}"
                    finished(flight, flight.result(stopped=True))
                self._waiting.clear()
                return
            self._collect(self._flying.popleft(), finished)

    def _send(self, flight: Flight, finished: Finished) -> None:
        step = flight.next_step
        if step is None or self.stopped() or self.lost is not None:
            finished(flight, flight.result(stopped=self.stopped()))
            return
        try:
            flight.sent = self.session.begin(step, self.credential)
        except ShellQuotaReached:
            self._waiting.append(flight)
            return
        except ConnectionFailed as exc:
            self._lose(exc.message, flight, finished)
            return
        except RemediateError as exc:  # before sending: a password missing, a locked keyring
            flight.problem = exc.message
            finished(flight, flight.result(stopped=False))
            return
        self._flying.append(flight)

    def _collect(self, flight: Flight, finished: Finished) -> None:
        assert flight.sent is not None
        try:
            outcome = self.session.finish(flight.sent)
        except RemediateError as exc:
            self._lose(exc.message, flight, finished)
            return
        flight.sent = None
        flight.results.append(outcome)
        if not outcome.ok:
            finished(flight, flight.result(stopped=False))
        else:
            self._send(flight, finished)

    def _lose(self, reason: str, flight: Flight, finished: Finished) -> None:
        """The connection dropped: every flight in flight on it may or may not have run."""
        self.lost = reason
        for each in [flight, *self._flying]:
            each.lost = reason
            finished(each, each.result(stopped=False))
        self._flying.clear()

    def _new_shell(self, finished: Finished) -> None:
        waiting, self._waiting = self._waiting, []
        try:
            self.session.recycle()
        except RemediateError as exc:
            self.lost = exc.message
            for flight in waiting:
                flight.problem = f"not sent: a new shell could not be opened ({exc.message})"
                finished(flight, flight.result(stopped=False))
            return
        for flight in waiting:
            self._send(flight, finished)
