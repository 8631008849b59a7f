"""A session with Exchange's remote shell: one shell per endpoint, every step a single
cmdlet (``shell.LocalShell`` sends them), and the reads the commands make through it.
pypsrp is imported when a shell opens, not when this module is.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from remediate.core.errors import RemoteCommandError
from remediate.core.exchange import ExchangeCertificate, QueueInfo, SendConnector
from remediate.core.plan import Parameter, Step, StepKind
from remediate.core.terminal import printable_text
from remediate.remote.errors import RemoteError, error_from_records
from remediate.remote.login import admin_password
from remediate.remote.shell import (
    COMMANDS_PER_SHELL,
    Credential,
    LocalShell,
    Pending,
    Shell,
    ShellQuotaReached,
    StepResult,
    wire_value,
)
from remediate.remote.wire import read_certificates, read_connectors, read_queues

if TYPE_CHECKING:
    from remediate.core.env import Environment
    from remediate.remote.connections import Connection
    from remediate.remote.hosting import ShellHost

__all__ = [
    "Pending",
    "RemoteError",
    "Session",
    "ShellQuotaReached",
    "StepResult",
    "open_session",
    "wire_value",
]

QUEUE_DELIVERY = "SmartHostConnectorDelivery"


class Session:
    """One shell on one endpoint, reused for every step until ``close()``, and the reads
    the commands make through it. The shell is pypsrp's pool in this process, or in a
    worker process when ``host`` is given (bulk: the client's CPU on more than one core)."""

    def __init__(
        self,
        connection: Connection,
        password: str | None,
        warn: Callable[[str], None] | None = None,
        *,
        runspaces: int = 1,
        commands_per_shell: int = COMMANDS_PER_SHELL,
        host: ShellHost | None = None,
    ) -> None:
        self.connection = connection
        self._warn = warn or _stderr
        options = {"runspaces": runspaces, "commands_per_shell": commands_per_shell}
        self._shell: Shell = (
            LocalShell(connection, password, self._warn, **options)
            if host is None
            else host.shell(connection, password, self._warn, **options)
        )

    def __enter__(self) -> Session:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Session({self.connection.label!r}, open={self.is_open})"

    @property
    def is_open(self) -> bool:
        return self._shell.is_open

    def open(self) -> None:
        self._shell.open()

    def close(self) -> None:
        self._shell.close()

    # --- steps -----------------------------------------------------------------------------

    def recycle(self) -> None:
        """A new shell for the next commands (nothing may be in flight)."""
        self._shell.close()
        self._shell.open()

    def run(self, step: Step, credential: Credential | None = None) -> StepResult:
        """Send one step and wait for it; error records come back in the result, transport
        failures raise. A new shell is opened first when the quota is reached."""
        try:
            pending = self.begin(step, credential)
        except ShellQuotaReached:
            self.recycle()
            pending = self.begin(step, credential)
        return self.finish(pending)

    def begin(self, step: Step, credential: Credential | None = None) -> Pending:
        """Send one step without waiting (the shell runs up to ``runspaces`` at once).
        ShellQuotaReached when the shell takes no more commands: nothing was sent."""
        return self._shell.begin(step, credential)

    def finish(self, pending: Pending) -> StepResult:
        """Wait for a step sent with ``begin`` and read what it produced."""
        return self._shell.finish(pending)

    # --- reads used by commands ------------------------------------------------------------

    def get_connectors(self, identity: str | None = None) -> list[SendConnector]:
        """The connectors Exchange returned; one it sent in a shape that cannot be read is
        left out with one warning naming it (the others are still returned)."""
        params = () if identity is None else (Parameter("Identity", identity),)
        result = self._read("Get-SendConnector", params, identity)
        connectors, unreadable = read_connectors(result.output)
        for text in unreadable:
            self._warn(f"remediate: WARNING: {text}")
        return connectors

    def get_queues(self, connector: SendConnector) -> list[QueueInfo]:
        """The smart-host delivery queues of ``connector`` on each of its source transport
        servers (matched by its GUID or name). Get-Queue without -Server answers only for
        the server the session runs on, so each server is asked by name; a server whose
        queues cannot be read is one warning, and its queues are left out (unknown)."""
        servers: tuple[str | None, ...] = connector.source_transport_servers or (None,)
        wanted = {connector.guid.lower(), connector.name.lower()} - {""}
        queues: list[QueueInfo] = []
        for server in servers:
            params = [Parameter("Include", QUEUE_DELIVERY)]
            if server:
                params.append(Parameter("Server", server))
            try:
                result = self._read("Get-Queue", tuple(params))
            except RemoteCommandError as exc:
                if not server:
                    raise
                # one transport server down or unknown: its queues stay unknown, not empty
                self._warn(f"remediate: WARNING: the queues on {server} could not be read: {exc}")
                continue
            queues += [
                q for q in read_queues(result.output) if q.next_hop_connector.lower() in wanted
            ]
        return queues

    def get_certificates(self, server: str | None) -> list[ExchangeCertificate]:
        """Get-ExchangeCertificate on ``server`` (the session's server when None)."""
        params = (Parameter("Server", server),) if server else ()
        result = self._read("Get-ExchangeCertificate", params)
        return read_certificates(result.output, server or "")

    def connector_certificates(self, connector: SendConnector) -> list[ExchangeCertificate]:
        """The source servers' certificates, read only when TlsCertificateName names one."""
        if not connector.tls_certificate_name:
            return []
        servers: tuple[str | None, ...] = connector.source_transport_servers or (None,)
        return [c for server in servers for c in self.get_certificates(server)]

    def retry_queue(self, identity: str) -> None:
        step = _read_step("Retry-Queue", (Parameter("Identity", identity),), StepKind.CHANGE)
        result = self.run(step)
        if not result.ok:
            raise error_from_records(result.errors, step.cmdlet, identity)

    def _read(
        self, cmdlet: str, params: tuple[Parameter, ...], identity: str | None = None
    ) -> StepResult:
        result = self.run(_read_step(cmdlet, params, StepKind.READ))
        if not result.ok:
            raise error_from_records(result.errors, cmdlet, identity)
        return result


def open_session(
    connection: Connection, env: Environment, *, password_stdin: bool = False
) -> Session:
    """An open Session, with the admin password from the keyring, stdin or a prompt, or a
    Kerberos ticket (no password)."""

    password = admin_password(connection, env, password_stdin=password_stdin)
    session = Session(connection, password, env.err)
    session.open()
    return session


def _read_step(cmdlet: str, params: tuple[Parameter, ...], kind: StepKind) -> Step:
    return Step(cmdlet, params, kind, reason=f"{cmdlet} for remediate", template="")


def _stderr(text: str) -> None:
    print(printable_text(text), file=sys.stderr)
