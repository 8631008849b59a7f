"""Worker processes that run shells for this process, so the client uses more than one core.

pypsrp spends about 10 ms of CPU per connector (each pipeline serialised, the HTTP requests,
the replies deserialised), and one Python process runs it on one core however many threads
it has (benchmarks/bulk.py). A ``ShellHost`` is one worker process; it runs ``LocalShell``s
for the Sessions of this process, a thread per shell. A Session given a host sends its steps
there (``HostedShell``) and keeps everything else here: plans, locks, backups, the audit log,
the report.

What crosses the pipe between the two processes (never argv, a file or the environment):
the connection settings and the admin password when a shell is made, each step with the
passwords its credentials need; back, each step's result, the warnings its shell gave, log
records (redacted in the worker, as here) and errors.

The worker ignores SIGINT, SIGTERM and SIGHUP: Ctrl-C reaches the whole process group, and
this process decides what happens (the steps in flight finish, ``core.interrupts``). It ends
when this process says so or closes the pipe (also when this process dies): it closes its
shells first. It is forked on Linux when this process runs one thread (nothing to import
again, and no other thread's lock can be copied held); otherwise it is spawned (Windows,
macOS, a caller with threads).
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from remediate.core.errors import ConnectionFailed, RemediateError
from remediate.core.logs import LOGGERS, known_secret, redact
from remediate.core.plan import CredentialRef
from remediate.remote.shell import (
    Credential,
    LocalShell,
    Pending,
    ShellQuotaReached,
    StepResult,
    missing_password,
    preload,
)

if TYPE_CHECKING:
    import queue
    from multiprocessing.connection import Connection as Pipe

    from remediate.core.plan import Step
    from remediate.remote.connections import Connection

__all__ = ["HostedShell", "ShellHost", "start_hosts"]

_EXIT = "exit"
_STOP_WAIT = 30.0  # seconds a worker gets to close its shells (a request each) before a kill


# Ctrl-C, kill and a closed terminal: this process decides; its workers ignore them
_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM while a worker starts: it is born with them blocked (a fork
    and an exec keep the mask) until ``serve`` ignores them, so one sent meanwhile neither
    kills it nor runs this process's handler there; here they wait, not lost. Windows has
    no signal mask (not run here: see the README)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


class _Call:
    """A request waiting for its reply."""

    __slots__ = ("done", "reply")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: tuple[bool, Any, list[str]] = (False, None, [])


class ShellHost:
    """This process's end of one worker process: requests go out on the pipe, one reader
    thread hands each reply to the call waiting for it."""

    def __init__(self, process: Any, pipe: Pipe, start_method: str) -> None:
        self.start_method = start_method  # "fork" or "spawn"
        self._process = process
        self._pipe = pipe
        self._lock = threading.Lock()  # the pipe's sending end and the calls waiting
        self._calls: dict[int, _Call] = {}
        self._requests = itertools.count(1)
        self._shells = itertools.count(1)
        self._gone: str | None = None  # why the worker can take no more requests
        self._reader = threading.Thread(target=self._read, name="shell-host", daemon=True)

    def __repr__(self) -> str:
        return f"ShellHost(pid={self._process.pid}, gone={self._gone is not None})"

    @property
    def pid(self) -> int:
        return int(self._process.pid)

    def shell(
        self,
        connection: Connection,
        password: str | None,
        warn: Callable[[str], None],
        *,
        runspaces: int,
        commands_per_shell: int,
    ) -> HostedShell:
        """A shell in the worker (made there when it first opens)."""
        setup = (connection, password, runspaces, commands_per_shell)
        return HostedShell(self, next(self._shells), setup, warn)

    def call(self, shell: int, operation: str, args: tuple[Any, ...]) -> tuple[Any, list[str]]:
        """Send one request and wait for it: its value and the shell's warnings. Raises what
        the shell raised there; ConnectionFailed when the worker has ended."""
        call = _Call()
        with self._lock:
            if self._gone is not None:
                raise ConnectionFailed(self._gone)
            request = next(self._requests)
            self._calls[request] = call
            try:
                self._pipe.send((request, shell, operation, args))
            except (OSError, ValueError):  # the worker died, its pipe with it
                del self._calls[request]
                raise ConnectionFailed(self._ended()) from None
        call.done.wait()
        ok, value, warnings = call.reply
        if not ok:
            raise value
        return value, warnings

    def close(self) -> None:
        """Ask the worker to close its shells and end; wait for it (kill it after 30 s)."""
        with self._lock:
            if self._gone is None:
                with contextlib.suppress(OSError, ValueError):
                    self._pipe.send((0, 0, _EXIT, ()))
        self._process.join(_STOP_WAIT)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        if self._reader.is_alive():
            self._reader.join(_STOP_WAIT)
        self._pipe.close()

    def _start_reading(self) -> None:
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                message = self._pipe.recv()
            except (EOFError, OSError):
                break
            except Exception:  # a reply that cannot be read: the stream is lost (a bug)
                self._process.kill()
                break
            if message[0] == "log":
                _, name, level, text = message
                logging.getLogger(name).log(level, "%s", text)
                continue
            _, request, ok, value, warnings = message
            with self._lock:
                call = self._calls.pop(request, None)
            if call is not None:
                call.reply = (ok, value, warnings)
                call.done.set()
        self._process.join(_STOP_WAIT)
        with self._lock:
            reason = self._ended()
            calls, self._calls = list(self._calls.values()), {}
        for call in calls:  # a step in flight may or may not have run
            call.reply = (False, ConnectionFailed(reason), [])
            call.done.set()

    def _ended(self) -> str:
        if self._gone is None:
            self._gone = f"remediate's worker process for this shell ended ({self._how()})"
        return self._gone

    def _how(self) -> str:
        code = self._process.exitcode
        if code is None:
            return "its pipe closed"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-code).name}"
        return f"exit status {code}"


class HostedShell:
    """A LocalShell in a ShellHost's worker, with LocalShell's methods (``shell.Shell``)."""

    def __init__(
        self,
        host: ShellHost,
        number: int,
        setup: tuple[Connection, str | None, int, int],
        warn: Callable[[str], None],
    ) -> None:
        self.connection = setup[0]
        self._host = host
        self._number = number
        self._setup: tuple[Connection, str | None, int, int] | None = setup
        self._warn = warn
        self._open = False

    def __repr__(self) -> str:
        return f"HostedShell({self.connection.label!r}, open={self._open}, {self._host!r})"

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        if self._open:
            return
        if self._setup is not None:
            self._call("new", self._setup)
            self._setup = None  # the password is the worker's now
        self._call("open", ())
        self._open = True

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        with contextlib.suppress(ConnectionFailed):  # a worker gone took its shell with it
            self._call("close", ())

    def begin(self, step: Step, credential: Credential | None = None) -> Pending:
        """As LocalShell.begin; the passwords the step's credentials need are looked up
        here (a missing one raises before anything is sent) and go with the step."""
        passwords: dict[CredentialRef, str] = {}
        for parameter in step.parameters:
            if isinstance(parameter.value, CredentialRef):
                if credential is None:
                    raise missing_password(parameter.value)
                passwords[parameter.value] = credential(parameter.value)
        self.open()
        token = self._call("begin", (step, passwords))
        return Pending(step, token)

    def finish(self, pending: Pending) -> StepResult:
        ok, output, errors, warnings, what_if, information = self._call("finish", (pending.ps,))
        return StepResult(pending.step, ok, output, errors, warnings, what_if, information)

    def _call(self, operation: str, args: tuple[Any, ...]) -> Any:
        try:
            value, warnings = self._host.call(self._number, operation, args)
        except ConnectionFailed:
            self._open = False
            raise
        for text in warnings:
            self._warn(text)
        return value


def start_hosts(count: int, *, method: str | None = None) -> list[ShellHost]:
    """``count`` worker processes, each ready to run shells. ``method``: "fork" or "spawn"
    (None: fork on Linux when this process runs one thread, else spawn)."""
    # lazy: multiprocessing costs every importer of the API ~10 ms; bulk's workers need it
    import multiprocessing.resource_tracker

    if method is None:
        alone = threading.active_count() == 1
        method = "fork" if sys.platform.startswith("linux") and alone else "spawn"
    forking = method == "fork"
    context: Any = multiprocessing.get_context(method)
    if not forking and hasattr(signal, "pthread_sigmask"):
        # spawn starts multiprocessing's resource tracker first, and that start unblocks
        # SIGINT and SIGTERM again in this thread (CPython 3.11 resource_tracker.py): started
        # before they are held, so the first worker is born with them held too
        multiprocessing.resource_tracker.ensure_running()
    levels = {name: logging.getLogger(name).getEffectiveLevel() for name in LOGGERS}
    hosts: list[ShellHost] = []
    if forking:
        preload()  # once here, not once per worker (their pages shared with this process)
        gc.freeze()  # the workers' collector then leaves this process's objects alone
    try:
        for _ in range(count):
            ours, theirs = context.Pipe()
            # a forked worker holds copies of this process's pipe ends; closed, so that a
            # worker sees its pipe end when this process ends
            inherited = [h._pipe.fileno() for h in hosts] + [ours.fileno()] if forking else []
            process = context.Process(
                target=serve,
                args=(theirs, inherited, levels),
                name="remediate-shell-host",
                daemon=True,
            )
            with _signals_held():
                process.start()
            theirs.close()
            hosts.append(ShellHost(process, ours, method))
    except BaseException:
        for host in hosts:
            host.close()
        raise
    finally:
        gc.unfreeze()
    for host in hosts:  # threads only once every worker is forked
        host._start_reading()
    return hosts


# --- the worker's side -------------------------------------------------------------------------


class _Outbox:
    """The worker's sending end, shared by its shell threads and its log handler."""

    def __init__(self, pipe: Pipe) -> None:
        self._pipe = pipe
        self._lock = threading.Lock()

    def send(self, message: tuple[Any, ...]) -> None:
        with self._lock, contextlib.suppress(OSError, ValueError):  # the parent is gone
            self._pipe.send(message)


class _Forwarder(logging.Handler):
    """Log records to the parent process, redacted here first."""

    def __init__(self, outbox: _Outbox) -> None:
        super().__init__()
        self._outbox = outbox
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = redact(self.format(record))
        except Exception:  # a log line must never end the run
            text = "(a log record that could not be shown)"
        self._outbox.send(("log", record.name, record.levelno, text))


class _ShellThread:
    """One shell of the worker, and the thread that runs its requests in order."""

    def __init__(self, outbox: _Outbox) -> None:
        # lazy: only a worker process runs shell threads
        from queue import SimpleQueue

        self.requests: queue.SimpleQueue[tuple[int, str, tuple[Any, ...]] | None] = SimpleQueue()
        self._outbox = outbox
        self._shell: LocalShell | None = None
        self._pending: dict[int, Pending] = {}
        self._tokens = itertools.count(1)
        self._warnings: list[str] = []
        self.thread = threading.Thread(target=self._run, name="shell", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.requests.get()) is not None:
            request, operation, args = item
            self._warnings = []
            try:
                reply = (True, self._do(operation, args))
            except (RemediateError, ShellQuotaReached) as exc:
                reply = (False, exc)
            except Exception as exc:  # a bug: said as such, without the worker's traceback
                reply = (False, RuntimeError(redact(f"{type(exc).__name__} in a shell: {exc}")))
            self._outbox.send(("reply", request, *reply, self._warnings))
        if self._shell is not None:
            self._shell.close()

    def _do(self, operation: str, args: tuple[Any, ...]) -> Any:
        if operation == "new":
            connection, password, runspaces, commands_per_shell = args
            known_secret(password)
            self._shell = LocalShell(
                connection,
                password,
                lambda text: self._warnings.append(text),
                runspaces=runspaces,
                commands_per_shell=commands_per_shell,
            )
            return None
        shell = self._shell
        assert shell is not None, "a shell's first request is 'new'"
        if operation == "open":
            shell.open()
            return None
        if operation == "close":
            shell.close()
            self._pending.clear()
            return None
        if operation == "begin":
            step, passwords = args
            for password in passwords.values():
                known_secret(password)
            pending = shell.begin(step, passwords.__getitem__)
            token = next(self._tokens)
            self._pending[token] = pending
            return token
        if operation == "finish":
            result = shell.finish(self._pending.pop(args[0]))
            return (
                result.ok,
                result.output,
                result.errors,
                result.warnings,
                result.what_if,
                result.information,
            )
        raise ValueError(f"unknown request {operation!r}")


def serve(pipe: Pipe, inherited: list[int], levels: dict[str, int]) -> None:
    """The worker process: run requests until told to end or the pipe closes."""
    for fd in inherited:
        with contextlib.suppress(OSError):
            os.close(fd)
    for number in _SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # held since the fork (``_signals_held``)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
    outbox = _Outbox(pipe)
    forwarder = _Forwarder(outbox)
    for name, level in levels.items():  # as this process's parent logs, through it
        logger = logging.getLogger(name)
        logger.handlers.clear()  # a forked worker's copies of this process's handlers
        logger.addHandler(forwarder)
        logger.setLevel(level)
        logger.propagate = False
    shells: dict[int, _ShellThread] = {}
    try:
        while True:
            try:
                request, number, operation, args = pipe.recv()
            except (EOFError, OSError):
                break
            if operation == _EXIT:
                break
            if number not in shells:
                shells[number] = _ShellThread(outbox)
            shells[number].requests.put((request, operation, args))
    finally:
        for shell in shells.values():
            shell.requests.put(None)
        for shell in shells.values():
            shell.thread.join()
