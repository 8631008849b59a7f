"""One run at a time per connector: a lock file per endpoint and connector.

Apply, undo, the wizard and bulk hold the lock of a connector from the read that plans the
change to the read-back after it, so a second run never plans from (and audits) a state the
first is changing. Locks are ``flock`` locks on files in ``state_dir()/locks``
(0700 directory, 0600 files, never through a symbolic link); the kernel drops them when the
holder exits, however it exits. On Windows (no flock) they are ``msvcrt.locking`` locks on
one byte far past the holder line (a locked range cannot be read there), which Windows
drops when the handle closes. A second run waits ``REMEDIATE_LOCK_WAIT`` seconds (default
5), then refuses naming the holder.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from remediate.core.errors import UsageError
from remediate.core.files import BINARY, NOFOLLOW, private_directory, windows
from remediate.core.paths import state_dir

if TYPE_CHECKING:
    from remediate.core.exchange import SendConnector
    from remediate.remote.connections import Connection

WAIT_ENV = "REMEDIATE_LOCK_WAIT"
DEFAULT_WAIT = 5.0
WINDOWS_LOCK_OFFSET = 1 << 20  # the byte msvcrt.locking locks: beyond any holder line


class ConnectorBusy(UsageError):
    """Another remediate run holds the connector's lock."""


def endpoint_identity(connection: Connection) -> tuple[str, str, int, str, str]:
    """What makes two names (a profile, URLs) one endpoint: scheme, host (lowercased, no
    trailing dot), port, path and session configuration (IIS and WinRM compare the last two
    without regard to case)."""
    return (
        connection.scheme.lower(),
        connection.server.lower().rstrip("."),
        connection.port,
        connection.path.rstrip("/").lower(),
        connection.configuration_name.lower(),
    )


def lock_path(connection: Connection, connector: str, environ: Mapping[str, str] | None) -> Path:
    key = "|".join(str(part) for part in (*endpoint_identity(connection), connector.lower()))
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return state_dir(environ) / "locks" / f"{digest}.lock"


class ConnectorLocks:
    """The locks this run holds (a context manager: released on exit)."""

    def __init__(
        self,
        connection: Connection,
        environ: Mapping[str, str] | None,
        names: Iterable[str] = (),
    ) -> None:
        """``names`` are locked on entering (before a session is opened: a refused run
        sends nothing)."""
        self.connection = connection
        self.environ = environ
        self._first = list(names)
        self._held: dict[str, int] = {}

    def acquire(self, names: Iterable[str]) -> None:
        """Lock every connector in ``names`` (in a fixed order), waiting briefly for each;
        ConnectorBusy naming the first one another run holds (none is then kept)."""
        taken = []
        try:
            for name in sorted({n.lower(): n for n in names}.values(), key=str.lower):
                if name.lower() not in self._held:
                    self._held[name.lower()] = self._take(name)
                    taken.append(name.lower())
        except BaseException:
            for key in taken:
                os.close(self._held.pop(key))
            raise

    def release(self) -> None:
        for fd in self._held.values():
            if windows():
                _unlock_windows(fd)
            os.close(fd)  # closing the descriptor drops the flock
        self._held.clear()

    def __enter__(self) -> ConnectorLocks:
        self.acquire(self._first)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _take(self, name: str) -> int:
        path = lock_path(self.connection, name, self.environ)
        private_directory(path.parent.parent)
        private_directory(path.parent)
        try:
            if windows() and path.is_symlink():
                raise OSError("a symbolic link")
            fd = os.open(path, os.O_RDWR | os.O_CREAT | NOFOLLOW | BINARY, 0o600)
        except OSError as exc:
            raise UsageError(f"cannot open the lock file {path}: {exc.strerror or exc}") from None
        deadline = time.monotonic() + _wait(self.environ)
        while True:
            try:
                _try_lock(fd)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _holder(fd)
                    os.close(fd)
                    raise ConnectorBusy(
                        f"another remediate run ({holder}) is changing '{name}' at "
                        f"{self.connection.label}; nothing was sent",
                        hint="wait for it to finish, then run again (it may have changed "
                        "the connector meanwhile)",
                    ) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        os.lseek(fd, 0, os.SEEK_SET)  # lseek and write: os.pwrite is POSIX-only
        os.write(fd, f"pid {os.getpid()} since {stamp}\n".encode())
        return fd


def _try_lock(fd: int) -> None:
    """An exclusive lock without waiting; BlockingIOError when another run holds it."""
    if windows():
        msvcrt = importlib.import_module("msvcrt")
        os.lseek(fd, WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as exc:  # EACCES / EDEADLOCK: held by another process
            raise BlockingIOError(str(exc)) from None
        return
    fcntl = importlib.import_module("fcntl")
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _unlock_windows(fd: int) -> None:
    msvcrt = importlib.import_module("msvcrt")
    with contextlib.suppress(OSError):  # closing the handle releases it too
        os.lseek(fd, WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 200).decode("utf-8", errors="replace").strip()
    except OSError:
        text = ""
    return text or "pid unknown"


def _wait(environ: Mapping[str, str] | None) -> float:
    environ = os.environ if environ is None else environ
    try:
        return max(0.0, float(environ.get(WAIT_ENV, DEFAULT_WAIT)))
    except ValueError:
        return DEFAULT_WAIT


def read_locked(
    locks: ConnectorLocks, read: Callable[[str], SendConnector], name: str
) -> SendConnector:
    """``read(name)`` under the connector's lock; when ``name`` was a GUID or spelled another
    way, the real name is locked too and the connector read again under both."""
    locks.acquire([name])
    connector = read(name)
    if connector.name.lower() != name.lower():
        locks.acquire([connector.name])
        connector = read(connector.name)
    return connector
