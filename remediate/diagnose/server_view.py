"""The transport server's own view: reachability, the Application log and the Send protocol
log, read on the server that logged the event (Microsoft's documented action for 2016 and
2002: "make sure that the server that logged this event can connect to the remote server").

The server's default WinRM endpoint (``http://EX01:5985/wsman``, configuration
``Microsoft.PowerShell``) is opened with the profile's login (same user, password and
authentication); like the Exchange endpoint it gets cmdlets only (``add_cmdlet`` /
``add_parameter``), never script text, though it would take some:

- ``Get-Item Env:COMPUTERNAME``: the server's name, for "from EX01" in findings;
- ``Test-NetConnection -ComputerName HOST -Port N``: TcpTestSucceeded, RemoteAddress,
  the round trip timed here; ``Resolve-DnsName HOST`` (the server's DNS) and
  ``Test-Connection HOST -Count 1`` (ping) beside it;
- ``Get-WinEvent -FilterHashtable @{LogName; ProviderName; Id}`` (MaxEvents bounded; the
  time window is applied here, pypsrp cannot send a DateTime inside a hashtable): the
  records' Message read with the event model of the file intake (``remediate.diagnose.events``);
- ``Get-ChildItem`` / ``Get-Content -TotalCount`` / ``Select-String -SimpleMatch`` on the
  SendProtocolLogPath that ``Get-TransportService`` (Exchange endpoint) names.

When the endpoint cannot be used (access denied, closed, no such configuration), ``open_view``
returns an ``Unavailable`` with one line saying why; callers fall back to this machine's view.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import PureWindowsPath
from typing import TYPE_CHECKING, Any, cast

from remediate.core.errors import RemediateError
from remediate.core.plan import Parameter, Step, StepKind
from remediate.diagnose.events import parse_text
from remediate.remote.connections import parse_server
from remediate.remote.errors import error_from_records
from remediate.remote.session import Session

if TYPE_CHECKING:
    from remediate.diagnose.events import EventRecord
    from remediate.remote.connections import Connection
    from remediate.remote.session import Session, StepResult

CONFIGURATION = "Microsoft.PowerShell"
WINRM_PORTS = {"http": 5985, "https": 5986}
MAX_EVENTS = 500
CONNECT_TIMEOUT = 10.0
MAX_LOG_LINES = 5000
LOG_FILTER = "SEND*.LOG"
NO_EVENTS = "NoMatchingEventsFound"
FALLBACK = "falling back to this machine's view"


def winrm_connection(connection: Connection, url: str | None = None) -> Connection:
    """The server's default WinRM endpoint with the same login: ``url`` when given, else the
    same host on WinRM's port (5985, or 5986 for https) and path ``/wsman``."""

    if url:
        parsed = parse_server(url)
        return replace(
            connection,
            server=parsed.server,
            port=parsed.port,
            path=parsed.path if parsed.path not in ("", "/", "/PowerShell") else "/wsman",
            scheme=parsed.scheme,
            configuration_name=CONFIGURATION,
        )
    return replace(
        connection,
        port=WINRM_PORTS.get(connection.scheme, 5985),
        path="/wsman",
        configuration_name=CONFIGURATION,
    )


@dataclass(frozen=True)
class Unavailable:
    """The server's view could not be had, and why (one line from the error)."""

    reason: str

    @property
    def note(self) -> str:
        """The one line to print where the run goes on with this machine's view."""
        return f"the server's own view is not available ({self.reason}); {FALLBACK}"


@dataclass(frozen=True)
class TcpCheck:
    """Test-NetConnection from the server."""

    server: str
    host: str
    port: int
    succeeded: bool
    resolved: bool
    remote_address: str | None
    elapsed_ms: float
    warnings: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()  # Resolve-DnsName's addresses
    ping: bool | None = None  # Test-Connection answered (None: not resolved)

    def line(self) -> str:
        where = f"{self.host}:{self.port} from {self.server}"
        if not self.resolved:
            return f"{where}: the name does not resolve on {self.server}"
        extra = f", DNS {', '.join(self.dns)}" if self.dns else ""
        extra += {True: ", ping answered", False: ", ping not answered", None: ""}[self.ping]
        if self.succeeded:
            return (
                f"{where}: TCP connect succeeded ({self.remote_address}, "
                f"{self.elapsed_ms:.0f} ms{extra})"
            )
        return f"{where}: TCP connect failed ({self.remote_address}{extra}; nothing answers there)"

    def to_json(self) -> dict[str, Any]:
        return {
            "checked_from": self.server,
            "host": self.host,
            "port": self.port,
            "tcp_succeeded": self.succeeded,
            "resolved": self.resolved,
            "remote_address": self.remote_address,
            "elapsed_ms": round(self.elapsed_ms, 1),
            "warnings": list(self.warnings),
            "dns": list(self.dns),
            "ping": self.ping,
        }


@dataclass
class ServerView:
    """An open session on the server's WinRM endpoint."""

    session: Session
    server: str

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ServerView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reachability --------------------------------------------------------------------------

    def test_tcp(self, host: str, port: int) -> TcpCheck:
        name = host.strip().strip("[]")
        started = time.monotonic()
        result = self._run(
            "Test-NetConnection", [("ComputerName", name), ("Port", port)], allow_errors=False
        )
        elapsed = (time.monotonic() - started) * 1000
        found = next((o for o in result.output if isinstance(o, dict)), {})
        address = found.get("RemoteAddress")
        resolved = bool(address) and not any("Name resolution" in w for w in result.warnings)
        dns = self.session.run(_step("Resolve-DnsName", [("Name", name)]))
        addresses = tuple(
            str(o["IPAddress"]) for o in dns.output if isinstance(o, dict) and o.get("IPAddress")
        )
        ping = self.session.run(_step("Test-Connection", [("ComputerName", name), ("Count", 1)]))
        answered = any(isinstance(o, dict) and o.get("StatusCode") == 0 for o in ping.output)
        return TcpCheck(
            server=self.server,
            host=host,
            port=port,
            succeeded=found.get("TcpTestSucceeded") is True,
            resolved=resolved,
            remote_address=str(address) if address else None,
            elapsed_ms=elapsed,
            warnings=tuple(result.warnings),
            dns=addresses,
            ping=answered if resolved else None,
        )

    # --- the Application log -------------------------------------------------------------------

    def events(
        self, ids: Sequence[int] = (2016, 2002), since: datetime | None = None
    ) -> list[EventRecord]:
        """MSExchangeTransport events ``ids`` of the server's Application log (at most
        MAX_EVENTS, the newest), oldest first, read with the file intake's event model."""

        table = {"LogName": "Application", "ProviderName": "MSExchangeTransport", "Id": tuple(ids)}
        result = self._run("Get-WinEvent", [("FilterHashtable", table), ("MaxEvents", MAX_EVENTS)])
        records: list[EventRecord] = []
        for item in reversed(result.output):
            if not isinstance(item, dict):
                continue
            moment = _moment(item.get("TimeCreated"))
            if since is not None and moment is not None and moment < since:
                continue
            found = parse_text(
                str(item.get("Message") or ""), f"{self.server} record {item.get('RecordId')}"
            )
            for record in found:
                record.event_id = record.event_id or _int(item.get("Id"))
                record.time = moment
                record.computer = str(item.get("MachineName") or self.server)
                record.provider = str(item.get("ProviderName") or "")
                records.append(record)
        return records

    # --- the Send protocol log -----------------------------------------------------------------

    def protocol_log(self, log_path: str, connector: str) -> list[str]:
        """The header and the connector's lines of the newest Send protocol log file."""
        listed = self._run("Get-ChildItem", [("Path", log_path), ("Filter", LOG_FILTER)])
        files = [o for o in listed.output if isinstance(o, dict) and o.get("Name")]
        if not files:
            return []
        newest = max(files, key=lambda f: (str(f.get("LastWriteTimeUtc") or ""), f["Name"]))
        path = str(newest.get("FullName") or PureWindowsPath(log_path) / str(newest["Name"]))
        header = self._run("Get-Content", [("Path", path), ("TotalCount", 5)])
        matches = self._run(
            "Select-String", [("Path", path), ("Pattern", connector), ("SimpleMatch", True)]
        )
        lines = [str(o) for o in header.output if isinstance(o, str) and o.startswith("#")]
        found = [str(o.get("Line") or "") for o in matches.output if isinstance(o, dict)][
            -MAX_LOG_LINES:
        ]
        return lines + found

    # --- internals -----------------------------------------------------------------------------

    def _run(
        self, cmdlet: str, params: list[tuple[str, Any]], *, allow_errors: bool = True
    ) -> StepResult:

        result = self.session.run(_step(cmdlet, params))
        if result.ok:
            return result
        benign = [e for e in result.errors if NO_EVENTS not in (e.error_id or "")]
        if not benign or (allow_errors and result.output):
            return result
        raise error_from_records(result.errors, cmdlet, None)


def open_view(
    connection: Connection,
    password: str | None,
    warn: Callable[[str], None],
    *,
    url: str | None = None,
) -> ServerView | Unavailable:
    """The server's view, or why not (one line, ending with the fallback)."""

    target = winrm_connection(connection, url)
    # a closed or filtered WinRM port must not hold the run for the Exchange endpoint's timeout
    target = replace(target, connect_timeout=min(target.connect_timeout, CONNECT_TIMEOUT))
    session = Session(target, password, warn)
    try:
        session.open()
        name = target.server
        found = session.run(
            Step(
                "Get-Item",
                (Parameter("Path", "Env:COMPUTERNAME"),),
                StepKind.READ,
                reason="the server's name",
                template="",
            )
        )
        for item in found.output:
            if isinstance(item, dict) and item.get("Value"):
                name = str(item["Value"])
    except RemediateError as exc:
        session.close()
        return Unavailable(exc.message)
    return ServerView(session, name)


def _step(cmdlet: str, params: list[tuple[str, Any]]) -> Step:
    """A read step (cmdlet and parameters only; a hashtable value goes as one)."""
    parameters = tuple(Parameter(name, cast(Any, value)) for name, value in params)
    return Step(cmdlet, parameters, StepKind.READ, reason=f"{cmdlet} for remediate", template="")


def _moment(value: Any) -> datetime | None:
    """TimeCreated (a DateTime, or its ISO text as pypsrp may hand it over) in UTC, naive as
    the event model keeps times."""

    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) else None
