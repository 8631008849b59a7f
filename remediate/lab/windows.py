"""The cmdlets of the server's default WinRM endpoint (configuration ``Microsoft.PowerShell``)
that the lab serves: Test-NetConnection, Get-WinEvent, Get-ChildItem, Get-Content and
Select-String, run "on" EX01.

Shapes, each from Microsoft Learn's page of the cmdlet:

- Test-NetConnection: a TestNetConnectionResult (ComputerName, RemoteAddress, RemotePort,
  InterfaceAlias, SourceAddress, NameResolutionResults, PingSucceeded, PingReplyDetails,
  TcpTestSucceeded); a failed TCP test or name resolution is a warning ("TCP connect to
  (ADDRESS : PORT) failed", "Name resolution of NAME failed") next to the result, not an
  error. The TCP test really connects, from the lab process (which plays the server), through
  the server's network path (``netpath``).
- Get-WinEvent -FilterHashtable (LogName, ProviderName, Id, Level, StartTime, EndTime): the
  lab's Application log of this server, newest first, as EventLogRecord objects (Id,
  ProviderName, LogName, TimeCreated, Level, LevelDisplayName, Message, MachineName,
  RecordId, TaskDisplayName, ...). ``Properties`` (EventProperty objects) arrive flattened to
  their type name at remoting depth 1, so a client reads the Message. Nothing matching is
  the non-terminating error "No events were found that match the specified selection
  criteria." (NoMatchingEventsFound).
- Resolve-DnsName: a DnsRecord_A (Name, Type, TTL, Section, IPAddress) or "DNS name does
  not exist"; Test-Connection (Windows PowerShell 5.1): Win32_PingStatus objects (Address,
  IPV4Address, ResponseTime, StatusCode) or "Testing connection to computer 'X' failed".
- Get-Item Env:COMPUTERNAME: the server's name (a DictionaryEntry, Name and Value).
- Get-ChildItem, Get-Content (-Tail, -TotalCount) and Select-String (-SimpleMatch): only on
  the Send protocol log directory (``protocol_log.SEND_LOG_PATH``); every other path does not
  exist here ("Cannot find path '...' because it does not exist.", ItemNotFoundException).
  Get-Content's lines go out as strings (PowerShell's PSPath note properties left out).

The runspace is no-language like the Exchange one: this endpoint would take script text on
a real server, the tool never sends any, and the lab refuses it.
"""

from __future__ import annotations

import datetime
import fnmatch
import re
import socket
from collections.abc import Callable
from pathlib import Path, PureWindowsPath
from typing import Any

from remediate.lab import binding
from remediate.lab.api import CmdletError, CommandCall, HostSink, LabObject
from remediate.lab.binding import Kind, Param, Signature
from remediate.lab.cmdlets import _command_not_found
from remediate.lab.model import AppEvent
from remediate.lab.netpath import ServerNetwork
from remediate.lab.org import Organization
from remediate.lab.protocol_log import ProtocolLog, lab_path

TCP_TIMEOUT = 3.0
_LEVELS = {"Critical": 1, "Error": 2, "Warning": 3, "Information": 4, "Verbose": 5}
_MAX_READ = 16 * 1024 * 1024

TEST_NET_CONNECTION = Signature(
    "Test-NetConnection",
    (
        Param("ComputerName", Kind.STRING, position=0, aliases=("RemoteAddress", "cn")),
        Param("Port", Kind.INT, aliases=("RemotePort",), minimum=1, maximum=65535),
        Param("InformationLevel", Kind.ENUM, choices=("Quiet", "Detailed")),
    ),
)
GET_WIN_EVENT = Signature(
    "Get-WinEvent",
    (
        Param("LogName", Kind.STRINGS, position=0),
        Param("FilterHashtable", Kind.ANY),
        Param("MaxEvents", Kind.INT, minimum=1),
    ),
)
GET_CHILD_ITEM = Signature(
    "Get-ChildItem",
    (
        Param("Path", Kind.STRINGS, position=0),
        Param("Filter", Kind.STRING, position=1),
        Param("File", Kind.SWITCH),
    ),
)
GET_CONTENT = Signature(
    "Get-Content",
    (
        Param("Path", Kind.STRINGS, position=0),
        Param("Tail", Kind.INT, aliases=("Last",), minimum=0),
        Param("TotalCount", Kind.INT, aliases=("First", "Head")),
        Param("Encoding", Kind.STRING),
    ),
)
RESOLVE_DNS_NAME = Signature(
    "Resolve-DnsName",
    (Param("Name", Kind.STRING, position=0), Param("Type", Kind.STRING, position=1)),
)
TEST_CONNECTION = Signature(
    "Test-Connection",
    (
        Param("ComputerName", Kind.STRINGS, position=0, aliases=("cn", "Destination")),
        Param("Count", Kind.INT, minimum=1, maximum=100),
    ),
)
GET_ITEM = Signature("Get-Item", (Param("Path", Kind.STRINGS, position=0),))
SELECT_STRING = Signature(
    "Select-String",
    (
        Param("Pattern", Kind.STRINGS, position=0),
        Param("Path", Kind.STRINGS, position=1),
        Param("SimpleMatch", Kind.SWITCH),
        Param("CaseSensitive", Kind.SWITCH),
    ),
)
_CLASSES = {
    "Test-NetConnection": "Microsoft.PowerShell.Cmdletization.GeneratedTypes.TestNetConnection",
    "Get-WinEvent": "Microsoft.PowerShell.Commands.GetWinEventCommand",
    "Get-ChildItem": "Microsoft.PowerShell.Commands.GetChildItemCommand",
    "Get-Content": "Microsoft.PowerShell.Commands.GetContentCommand",
    "Select-String": "Microsoft.PowerShell.Commands.SelectStringCommand",
    "Get-Item": "Microsoft.PowerShell.Commands.GetItemCommand",
    "Resolve-DnsName": "Microsoft.DnsClient.Commands.ResolveDnsName",
    "Test-Connection": "Microsoft.PowerShell.Commands.TestConnectionCommand",
}


class WindowsShell:
    """One shell on the server's Microsoft.PowerShell endpoint."""

    def __init__(self, org: Organization, network: ServerNetwork, log: ProtocolLog) -> None:
        self.org = org
        self.network = network
        self.log = log
        self.server = org.local_server
        self._cmdlets: dict[str, tuple[Signature, Callable[..., list[Any]]]] = {
            sig.name.lower(): (sig, handler)
            for sig, handler in (
                (TEST_NET_CONNECTION, self._test_net_connection),
                (GET_WIN_EVENT, self._get_win_event),
                (GET_CHILD_ITEM, self._get_child_item),
                (GET_CONTENT, self._get_content),
                (SELECT_STRING, self._select_string),
                (GET_ITEM, self._get_item),
                (RESOLVE_DNS_NAME, self._resolve_dns_name),
                (TEST_CONNECTION, self._test_connection),
            )
        }

    def invoke(self, call: CommandCall, pipeline_input: list[LabObject], host: HostSink) -> Any:
        found = self._cmdlets.get(call.name.strip().lower())
        if found is None:
            raise _command_not_found(call.name)
        signature, handler = found
        bound = binding.bind(signature, call)
        try:
            return handler(bound, host)
        except CmdletError as error:
            if bound.get("ErrorAction") in ("SilentlyContinue", "Ignore"):
                return []
            raise error from None

    # --- Test-NetConnection --------------------------------------------------------------------

    def _test_net_connection(self, bound: dict[str, Any], host: HostSink) -> list[Any]:
        name = bound.get("ComputerName") or "internetbeacon.msedge.net"
        port = bound.get("Port")
        address = self.network.resolve(name)
        props: dict[str, Any] = {
            "ComputerName": name,
            "RemoteAddress": address or None,
            "RemotePort": port or 0,
            "InterfaceAlias": "Ethernet",
            "SourceAddress": "127.0.0.1" if address else None,
            "NameResolutionResults": [address] if address else [],
            "PingSucceeded": False,
            "PingReplyDetails": None,
            "TcpTestSucceeded": False,
        }
        if address is None:
            host.write_warning(f"Name resolution of {name} failed")
        elif address == "":  # off this machine: the lab never dials it; nothing answers
            props["RemoteAddress"] = name
            host.write_warning(f"Ping to {name} failed with status: TimedOut")
            if port:
                host.write_warning(f"TCP connect to ({name} : {port}) failed")
        else:
            props["PingSucceeded"] = True  # a loopback address always answers an echo
            props["PingReplyDetails"] = f"{address} (RTT 0 ms)"
            if port:
                props["TcpTestSucceeded"] = self._tcp(address, port)
                if not props["TcpTestSucceeded"]:
                    host.write_warning(f"TCP connect to ({address} : {port}) failed")
        if bound.get("InformationLevel") == "Quiet":
            return [bool(props["TcpTestSucceeded"])]
        types = ["TestNetConnectionResult"]
        return [LabObject(types, props, "TestNetConnectionResult")]

    def _tcp(self, address: str, port: int) -> bool:
        target = self.network.dial(address, port)
        family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(TCP_TIMEOUT)
            try:
                sock.connect(target)
            except OSError:
                return False
        return True

    def _resolve_dns_name(self, bound: dict[str, Any], _host: HostSink) -> list[Any]:
        """A DnsRecord_A for a name the server resolves; "DNS name does not exist"
        (DNS_ERROR_RCODE_NAME_ERROR, non-terminating) for one it does not."""
        name = str(bound.get("Name") or "")
        address = self.network.resolve(name)
        if not address:
            raise _error(
                "Resolve-DnsName",
                f"{name} : DNS name does not exist",
                "DNS_ERROR_RCODE_NAME_ERROR",
                "System.ComponentModel.Win32Exception",
                "ResourceUnavailable",
                target=name,
                terminating=False,
            )
        props = {"Name": name, "Type": "A", "TTL": 1200, "Section": "Answer", "IPAddress": address}
        types = [
            "Microsoft.DnsClient.Commands.DnsRecord_A",
            "Microsoft.DnsClient.Commands.DnsRecord",
        ]
        return [LabObject(types, props, name)]

    def _test_connection(self, bound: dict[str, Any], _host: HostSink) -> list[Any]:
        """Windows PowerShell 5.1's Test-Connection: one Win32_PingStatus per echo; a loopback
        address always answers, anything else does not (the lab sends no packet off this
        machine): "Testing connection to computer 'X' failed: ..." (PingException)."""
        out: list[Any] = []
        for name in bound.get("ComputerName") or []:
            address = self.network.resolve(name)
            if not address:
                reason = "No such host is known" if address is None else "Request timed out"
                raise _error(
                    "Test-Connection",
                    f"Testing connection to computer '{name}' failed: {reason}",
                    "TestConnectionException",
                    "System.Net.NetworkInformation.PingException",
                    "ResourceUnavailable",
                    target=name,
                    terminating=False,
                )
            props = {
                "Address": name,
                "IPV4Address": address,
                "ResponseTime": 0,
                "StatusCode": 0,
                "ReplySize": 32,
            }
            types = [r"System.Management.ManagementObject#root\cimv2\Win32_PingStatus"]
            out += [LabObject(types, dict(props), name) for _ in range(bound.get("Count") or 4)]
        return out

    # --- Get-WinEvent ---------------------------------------------------------------------------

    def _get_win_event(self, bound: dict[str, Any], _host: HostSink) -> list[Any]:
        table = bound.get("FilterHashtable")
        if table is not None and not isinstance(table, dict):
            raise _error(
                "Get-WinEvent",
                "Cannot bind parameter 'FilterHashtable'. Cannot convert the value to type "
                '"System.Collections.Hashtable[]".',
                "CannotConvertArgumentNoMessage",
                binding.BINDING_EXCEPTION,
                "InvalidArgument",
            )
        criteria = {str(k).lower(): v for k, v in (table or {}).items()}
        logs = criteria.pop("logname", None) or bound.get("LogName") or []
        logs = [logs] if isinstance(logs, str) else list(logs)
        for log in logs:
            if str(log).lower() != "application":
                raise _error(
                    "Get-WinEvent",
                    f'There is not an event log on the localhost computer that matches "{log}".',
                    "NoMatchingLogsFound",
                    "System.Exception",
                    "ObjectNotFound",
                    terminating=False,
                )
        test = _event_filter(criteria)
        fqdn = self.org.server_fqdn(self.server).lower()
        events = [e for e in self.org.events if e.machine.lower() == fqdn and test(e)]
        events.sort(key=lambda e: e.record_id, reverse=True)  # newest first
        if bound.get("MaxEvents"):
            events = events[: bound["MaxEvents"]]
        if not events:
            raise _error(
                "Get-WinEvent",
                "No events were found that match the specified selection criteria.",
                "NoMatchingEventsFound",
                "System.Exception",
                "ObjectNotFound",
                terminating=False,
            )
        return [_event_record(e) for e in events]

    # --- files ---------------------------------------------------------------------------------

    def _get_child_item(self, bound: dict[str, Any], _host: HostSink) -> list[Any]:
        out: list[Any] = []
        pattern = (bound.get("Filter") or "*").lower()
        for text in bound.get("Path") or ["."]:
            found = self._existing(text, "Get-ChildItem")
            files = sorted(found.iterdir()) if found.is_dir() else [found]
            folder = text if found.is_dir() else str(PureWindowsPath(text).parent)
            out += [
                _file_info(f, folder)
                for f in files
                if f.is_file() and fnmatch.fnmatchcase(f.name.lower(), pattern)
            ]
        return out

    def _get_content(self, bound: dict[str, Any], _host: HostSink) -> list[Any]:
        out: list[Any] = []
        for text in bound.get("Path") or []:
            lines = self._lines(self._file(text, "Get-Content"))
            if "TotalCount" in bound and bound["TotalCount"] >= 0:
                lines = lines[: bound["TotalCount"]]
            if "Tail" in bound:
                lines = lines[len(lines) - bound["Tail"] :] if bound["Tail"] else []
            out += lines
        return out

    def _select_string(self, bound: dict[str, Any], _host: HostSink) -> list[Any]:
        patterns = bound.get("Pattern") or []
        flags = 0 if bound.get("CaseSensitive") else re.IGNORECASE
        if bound.get("SimpleMatch"):
            tests = [re.compile(re.escape(p), flags) for p in patterns]
        else:
            tests = [re.compile(p, flags) for p in patterns]
        out: list[Any] = []
        for text in bound.get("Path") or []:
            path = self._file(text, "Select-String")
            for number, line in enumerate(self._lines(path), start=1):
                hit = next((p for p in tests if p.search(line)), None)
                if hit is not None:
                    out.append(_match_info(line, number, text, path.name, hit.pattern))
        return out

    def _get_item(self, bound: dict[str, Any], _host: HostSink) -> list[Any]:
        """Only ``Env:COMPUTERNAME`` (the Environment provider's DictionaryEntry) and the
        protocol-log files exist here."""
        out: list[Any] = []
        for text in bound.get("Path") or []:
            if text.strip().lower() == "env:computername":
                props = {"Name": "COMPUTERNAME", "Key": "COMPUTERNAME", "Value": self.server}
                out.append(LabObject(["System.Collections.DictionaryEntry"], props, self.server))
                continue
            found = self._existing(text, "Get-Item")
            folder = str(PureWindowsPath(text).parent)
            out.append(_file_info(found, folder) if found.is_file() else text)
        return out

    def _existing(self, text: str, cmdlet: str) -> Path:
        found = lab_path(self.log, self.server, text)
        if found is None or not found.exists():
            raise _error(
                cmdlet,
                f"Cannot find path '{text}' because it does not exist.",
                "PathNotFound",
                "System.Management.Automation.ItemNotFoundException",
                "ObjectNotFound",
                target=text,
                terminating=False,
            )
        return found

    def _file(self, text: str, cmdlet: str) -> Path:
        found = self._existing(text, cmdlet)
        if found.is_dir():
            raise _error(
                cmdlet,
                f"Access to the path '{text}' is denied.",
                "GetContentReaderUnauthorizedAccessError",
                "System.UnauthorizedAccessException",
                "PermissionDenied",
                target=text,
                terminating=False,
            )
        return found

    @staticmethod
    def _lines(path: Path) -> list[str]:
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            return handle.read(_MAX_READ).splitlines()


def _event_filter(criteria: dict[str, Any]) -> Callable[[AppEvent], bool]:
    providers = _many(criteria.get("providername"))
    ids = {int(i) for i in _many(criteria.get("id"))}
    levels = {int(i) for i in _many(criteria.get("level"))}
    start, end = criteria.get("starttime"), criteria.get("endtime")

    def test(event: AppEvent) -> bool:
        if providers and event.source.lower() not in {str(p).lower() for p in providers}:
            return False
        if ids and event.event_id not in ids:
            return False
        if levels and _LEVELS.get(event.level, 4) not in levels:
            return False
        if isinstance(start, datetime.datetime) and event.time_created < _aware(start):
            return False
        return not (isinstance(end, datetime.datetime) and event.time_created > _aware(end))

    return test


def _many(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _aware(moment: datetime.datetime) -> datetime.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _event_record(event: AppEvent) -> LabObject:
    level = _LEVELS.get(event.level, 4)
    props: dict[str, Any] = {
        "Message": event.message,
        "Id": event.event_id,
        "Version": 0,
        "Qualifiers": 49156 if level <= 2 else 32772,
        "Level": level,
        "Task": 1,
        "Opcode": 0,
        "Keywords": 36028797018963968,
        "RecordId": event.record_id,
        "ProviderName": event.source,
        "ProviderId": None,
        "LogName": "Application",
        "ProcessId": 4321,
        "ThreadId": 0,
        "MachineName": event.machine,
        "UserId": None,
        "TimeCreated": event.time_created,
        "ActivityId": None,
        "RelatedActivityId": None,
        "ContainerLog": "Application",
        "MatchedQueryIds": [],
        "LevelDisplayName": event.level,
        "OpcodeDisplayName": "Info",
        "TaskDisplayName": event.category,
        "KeywordsDisplayNames": ["Classic"],
        "Properties": ["System.Diagnostics.Eventing.Reader.EventProperty"] * len(event.fields),
    }
    types = [
        "System.Diagnostics.Eventing.Reader.EventLogRecord",
        "System.Diagnostics.Eventing.Reader.EventRecord",
    ]
    return LabObject(types, props, "System.Diagnostics.Eventing.Reader.EventLogRecord")


def _file_info(path: Path, folder: str) -> LabObject:
    stat = path.stat()
    written = datetime.datetime.fromtimestamp(stat.st_mtime, datetime.UTC)
    full = str(PureWindowsPath(folder) / path.name)
    props: dict[str, Any] = {
        "Name": path.name,
        "FullName": full,
        "DirectoryName": folder,
        "Extension": path.suffix,
        "Length": stat.st_size,
        "Mode": "-a----",
        "LastWriteTime": written,
        "LastWriteTimeUtc": written,
    }
    types = ["System.IO.FileInfo", "System.IO.FileSystemInfo", "System.MarshalByRefObject"]
    return LabObject(types, props, full)


def _match_info(line: str, number: int, path: str, name: str, pattern: str) -> LabObject:
    props: dict[str, Any] = {
        "IgnoreCase": True,
        "LineNumber": number,
        "Line": line,
        "Filename": name,
        "Path": path,
        "Pattern": pattern,
        "Context": None,
        "Matches": ["System.Text.RegularExpressions.Match"],
    }
    return LabObject(["Microsoft.PowerShell.Commands.MatchInfo"], props, f"{path}:{number}:{line}")


def _error(
    cmdlet: str,
    message: str,
    error_id: str,
    exception: str,
    category: str,
    *,
    target: str | None = None,
    terminating: bool = True,
) -> CmdletError:
    return CmdletError(
        message=message,
        error_id=f"{error_id},{_CLASSES[cmdlet]}",
        category=category,
        exception_type=exception,
        target=target,
        terminating=terminating,
    )
