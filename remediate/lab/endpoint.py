"""The lab's ``/PowerShell`` endpoint: WSMan actions dispatched to PSRP shells.

Sits between the HTTP server (bytes in, bytes out) and ``psrp_session.PSRPShell`` (one per
WSMan shell). One endpoint serves one session configuration: ``Microsoft.Exchange`` on
``/PowerShell``, or the server's default ``Microsoft.PowerShell`` on ``/wsman``; every shell
gets its own ``CommandRunner`` from the factory (per-shell state, one shared organisation).
``denied`` plays an account without permission on the configuration: Create answers WinRM's
"Access is denied." fault.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from remediate.lab import wsman
from remediate.lab.api import CommandRunner
from remediate.lab.psrp_session import MAX_COMMANDS_PER_SHELL, Latency, PSRPShell, no_latency
from remediate.lab.wsman import Action, Request, WSManFault

log = logging.getLogger(__name__)

CONFIGURATION = "Microsoft.Exchange"
POWERSHELL_CONFIGURATION = "Microsoft.PowerShell"  # the default WinRM endpoint's
# Long-polling Receive never waits longer than this, whatever OperationTimeout asks.
_MAX_RECEIVE_WAIT = 2.0
# PowerShellMaxConcurrency of Exchange's default throttling policy: shells open at once per
# user (exchange-notes.md "Throttling"; cloudiffic.com on the Exchange 2010 error).
MAX_SHELLS_PER_USER = 18


@dataclass
class Reply:
    status: int
    body: bytes


@dataclass
class _Entry:
    shell: PSRPShell
    info: wsman.ShellInfo


class Endpoint:
    def __init__(
        self,
        runner_factory: Callable[[], CommandRunner],
        *,
        machine: str,
        url: str,
        owner: str,
        latency: Latency = no_latency,
        max_shells: int = MAX_SHELLS_PER_USER,
        max_commands: int = MAX_COMMANDS_PER_SHELL,
        configuration: str = CONFIGURATION,
        denied: bool = False,
    ) -> None:
        self._runner_factory = runner_factory
        self.configuration = configuration
        self.denied = denied
        self._latency = latency
        self.max_shells = max_shells
        self.max_commands = max_commands
        self.machine = machine
        self.url = url
        self.owner = owner
        self._shells: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self.shells_created = 0
        self._peak_closed = 0  # peak_pipelines of shells already deleted

    @property
    def peak_pipelines(self) -> int:
        """The most pipelines one shell ever ran at once (an observation for tests)."""
        with self._lock:
            open_peaks = [e.shell.peak_running for e in self._shells.values()]
        return max([self._peak_closed, *open_peaks])

    @property
    def shell_count(self) -> int:
        with self._lock:
            return len(self._shells)

    def handle(self, body: bytes, client_ip: str) -> Reply:
        request: Request | None = None
        try:
            request = wsman.parse_request(body)
            return Reply(200, self._dispatch(request, client_ip))
        except WSManFault as fault:
            return self.fault(request, fault)
        except Exception as exc:  # a lab bug must not hang the client: answer a fault
            log.exception("lab endpoint failed on %s", request.action if request else "?")
            return self.fault(request, wsman.internal_error(type(exc).__name__))

    def fault(self, request: Request | None, fault: WSManFault) -> Reply:
        return Reply(500, wsman.fault_response(request, fault, self.machine))

    def close(self) -> None:
        with self._lock:
            entries = list(self._shells.values())
            self._shells.clear()
        for entry in entries:
            entry.shell.close()

    # --- actions ---------------------------------------------------------------------------

    def _dispatch(self, request: Request, client_ip: str) -> bytes:
        if request.action == Action.GET:
            return self._get(request)
        configuration = request.configuration
        if configuration is None or configuration.lower() != self.configuration.lower():
            name = configuration if configuration is not None else request.resource_uri
            raise wsman.resource_not_found(name, self.machine)
        if request.action == Action.CREATE:
            if self.denied:
                raise wsman.access_denied()
            return self._create(request, client_ip)
        entry = self._entry(request)
        if request.action == Action.COMMAND:
            requested, data = wsman.command_arguments(request)
            return wsman.command_response(request, entry.shell.command(requested, data))
        if request.action == Action.SEND:
            for stream in wsman.send_streams(request):
                entry.shell.send(stream.name, stream.command_id, stream.data)
            return wsman.empty_response(request, Action.SEND)
        if request.action == Action.RECEIVE:
            return self._receive(request, entry)
        if request.action == Action.SIGNAL:
            command_id, code = wsman.signal(request)
            entry.shell.signal(command_id, code)
            return wsman.empty_response(request, Action.SIGNAL)
        if request.action == Action.DELETE:
            with self._lock:
                self._shells.pop(entry.shell.shell_id, None)
                self._peak_closed = max(self._peak_closed, entry.shell.peak_running)
            entry.shell.close()
            return wsman.empty_response(request, Action.DELETE)
        raise wsman.action_not_supported(request.action)

    def _entry(self, request: Request) -> _Entry:
        shell_id = (request.shell_id or "").upper()
        with self._lock:
            entry = self._shells.get(shell_id)
        if entry is None:
            raise wsman.shell_not_found(request.shell_id or "")
        return entry

    def _create(self, request: Request, client_ip: str) -> bytes:
        shell_id = str(uuid.uuid4()).upper()
        if request.body is not None and request.body.get("ShellId"):
            shell_id = request.body.get("ShellId", "").upper()
        with self._lock:  # every shell is the lab admin's: the per-user limit is the total
            if len(self._shells) >= self.max_shells:
                raise wsman.shell_quota_exceeded(self.max_shells)
        shell = PSRPShell(
            shell_id,
            self._runner_factory(),
            wsman.creation_xml(request),
            latency=self._latency,
            max_commands=self.max_commands,
        )
        info = wsman.ShellInfo(
            shell_id=shell_id,
            resource_uri=f"{wsman.POWERSHELL_URI_PREFIX}{self.configuration}",
            owner=self.owner,
            client_ip=client_ip,
        )
        with self._lock:
            if len(self._shells) >= self.max_shells:  # another Create won the last place
                raise wsman.shell_quota_exceeded(self.max_shells)
            self._shells[shell_id] = _Entry(shell, info)
            self.shells_created += 1
        return wsman.create_response(request, info, self.url)

    def _receive(self, request: Request, entry: _Entry) -> bytes:
        command_id = wsman.receive_command_id(request)
        wait = min(request.operation_timeout, _MAX_RECEIVE_WAIT)
        result = entry.shell.receive(command_id, wait)
        if result is None:
            if command_id is None:
                # pypsrp's pool-open loop cannot take the timeout fault: answer empty.
                return wsman.receive_response(request, [], None, done=False)
            raise wsman.operation_timeout()
        chunks, done = result
        return wsman.receive_response(request, chunks, command_id, done)

    def _get(self, request: Request) -> bytes:
        """``RunspacePool.is_alive``: the state of one shell."""
        if request.resource_uri.rstrip("/").lower() != wsman.SHELL_URI.lower():
            raise wsman.resource_not_found(request.resource_uri, self.machine)
        return wsman.get_shell_response(request, self._entry(request).info)
