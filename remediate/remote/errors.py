"""Failures on the way to Exchange, and Exchange's own error records, as one line for admins.

``map_exception`` turns what pypsrp/requests raise into a ``ConnectionFailed`` (or passes a
``RemediateError`` through); ``error_from_records`` turns the error records of one cmdlet call
into a ``RemoteCommandError``. Messages never carry a secret: they are built from the
connection's URL and user name and from the server's answer, never from request headers.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from remediate.core.errors import (
    ConnectionFailed,
    LoginRefused,
    RemediateError,
    RemoteCommandError,
    UsageError,
)
from remediate.remote.exception_chain import causes, first_line
from remediate.remote.kerberos import INSTALL_HINT, kerberos_failure

if TYPE_CHECKING:
    from remediate.remote.connections import Connection

# WSMan fault codes (MS-WSMV / winerror.h) worth a specific line.
WSMAN_RESOURCE_NOT_FOUND = 2150858752  # unknown resource URI / session configuration
WSMAN_ACCESS_DENIED = 5

# System.Management.Automation.ErrorCategory, by value.
_CATEGORIES = (
    "NotSpecified OpenError CloseError DeviceError DeadlockDetected InvalidArgument InvalidData "
    "InvalidOperation InvalidResult InvalidType MetadataError NotImplemented NotInstalled "
    "ObjectNotFound OperationStopped OperationTimeout SyntaxError ParserError PermissionDenied "
    "ResourceBusy ResourceExists ResourceUnavailable ReadError WriteError FromStdErr "
    "SecurityError ProtocolError ConnectionError AuthenticationError LimitsExceeded "
    "QuotaExceeded NotEnabled"
).split()

_E = TypeVar("_E", bound=BaseException)

ENDPOINT_HINT = (
    "Exchange's remote shell is the path /PowerShell with the session configuration "
    "Microsoft.Exchange (e.g. --server http://ex01.contoso.com/PowerShell)"
)


@dataclass
class RemoteError:
    """One PowerShell error record, as far as an admin needs it."""

    category: str
    fully_qualified_error_id: str
    message: str
    target: str | None
    exception_type: str | None = None

    @property
    def error_id(self) -> str:
        """The FullyQualifiedErrorId without Exchange's ``[Server=...]`` prefixes and task."""
        text = self.fully_qualified_error_id.rsplit("] ", 1)[-1]
        return text.split(",", 1)[0].strip()

    def __str__(self) -> str:
        return self.message


def remote_error_from_record(record: Any) -> RemoteError:
    """A pypsrp ErrorRecord (deserialized) as a RemoteError."""
    text = getattr(record, "details_message", None) or _record_text(record)
    category_value = getattr(record, "category", None)
    if isinstance(category_value, int) and 0 <= category_value < len(_CATEGORIES):
        category = _CATEGORIES[category_value]
    else:
        category = str(getattr(record, "message", "") or "NotSpecified").split(":", 1)[0]
    exception = getattr(record, "exception", None)
    types = getattr(exception, "types", None) or []
    target = getattr(record, "target_object", None)
    return RemoteError(
        category=category,
        fully_qualified_error_id=str(getattr(record, "fq_error", "") or ""),
        message=" ".join(text.split()),
        target=None if target is None else str(target),
        exception_type=types[0] if types else None,
    )


def _record_text(record: Any) -> str:
    try:
        text = str(record)
    except TypeError:  # pypsrp's __str__ returns None when the record has no ToString
        text = ""
    if text and text != "None":
        return text
    return str(getattr(record, "message", "") or "")


# --- error records -> RemoteCommandError -------------------------------------------------------


def error_from_records(
    errors: Sequence[RemoteError], cmdlet: str, identity: str | None = None
) -> RemoteCommandError:
    """The first error record of a cmdlet call as one line with a hint."""
    if not errors:
        return RemoteCommandError(f"{cmdlet} failed without an error record")
    first = errors[0]
    # Exchange's ids are hex codes after [Server=...] prefixes (exchange-notes.md, "What comes
    # back"): records are told apart by their exception type and category, never by an id.
    exception = (first.exception_type or "").removeprefix("Deserialized.")
    target = identity or first.target
    if exception.endswith("CommandNotFoundException"):
        return RemoteCommandError(
            f"The cmdlet {first.target or cmdlet} is not available to this account",
            hint="the Exchange account needs the Organization Management role (RBAC)",
        )
    if exception.endswith("ManagementObjectNotFoundException") or (
        first.category == "ObjectNotFound"
    ):
        if "Queue" in cmdlet:
            return RemoteCommandError(
                f"Queue '{target}' was not found",
                hint="run 'remediate show --queues' to see the current queues",
            )
        what = "Send connector" if "SendConnector" in cmdlet else "Object"
        return RemoteCommandError(
            f"{what} '{target}' was not found",
            hint="run 'remediate show' to list the Send connectors by name",
        )
    if "no-language mode" in first.message:
        return RemoteCommandError(
            "The Exchange endpoint refused script text (its runspace is in no-language mode)",
            hint="only single cmdlets with parameters can be sent to Exchange's remote shell",
        )
    if exception.endswith("HostException"):
        return RemoteCommandError(
            f"{cmdlet} asked for confirmation, which a remote session cannot answer",
            hint="the step must pass -Confirm:$false",
        )
    return RemoteCommandError(f"{cmdlet}: {first.message}", hint=_record_hint(first))


def _record_hint(error: RemoteError) -> str | None:
    if error.exception_type and error.exception_type.endswith("DataValidationException"):
        return "Exchange refused the change; nothing was modified by this step"
    if error.exception_type and "ParameterBinding" in error.exception_type:
        return "the Exchange version on the server may not support this parameter"
    return None


# --- transport failures -> ConnectionFailed ----------------------------------------------------


def map_exception(exc: BaseException, connection: Connection) -> RemediateError:
    """What went wrong talking to ``connection``, as one line with a hint."""
    if isinstance(exc, RemediateError):
        return exc
    # lazy: pypsrp and requests take about 100 ms to import; only a connection needs them
    from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError
    from requests import exceptions as http

    url = connection.url
    kerberos = kerberos_failure(exc, connection)
    if kerberos is not None:
        return kerberos
    if isinstance(exc, ImportError) and "gssapi" in str(exc).lower():
        return ConnectionFailed(
            f"--auth {connection.auth} needs the Kerberos libraries (Python gssapi and krb5)",
            hint=INSTALL_HINT,
        )
    if isinstance(exc, ValueError) and "incompatible with the specified auth" in str(exc):
        offered = str(exc).partition("protocol '")[2].partition("'")[0]
        return ConnectionFailed(
            f"{url} does not offer {connection.auth} authentication "
            f"(it asks for: {offered or 'another method'})",
            hint="pass the --auth method the /PowerShell virtual directory allows",
        )
    if isinstance(exc, AuthenticationError) and "authentication methods" in str(exc):
        offered = str(exc).rpartition("actual:")[2].strip(" '\"")
        return ConnectionFailed(
            f"{url} does not offer {connection.auth} authentication "
            f"(it asks for: {offered.split(' ', 1)[0] or 'nothing'})",
            hint="pass the --auth method the /PowerShell virtual directory allows",
        )
    if isinstance(exc, AuthenticationError) and str(connection.auth) == "certificate":
        return ConnectionFailed(
            f"{url} refused the client certificate {connection.certificate_file} "
            "(certificate authentication, HTTP 401)",
            hint="the certificate must be mapped to an admin account in IIS; or use --auth "
            "the /PowerShell virtual directory allows",
        )
    if isinstance(exc, AuthenticationError) and connection.username is None:
        return ConnectionFailed(
            f"{url} refused the login with the Kerberos ticket ({connection.auth} "
            "authentication, HTTP 401)",
            hint="check the ticket's user (klist) has access to Exchange's remote shell",
        )
    if isinstance(exc, AuthenticationError):
        return LoginRefused(
            f"{url} refused the user name or password for {connection.username} "
            f"({connection.auth} authentication, HTTP 401)",
            hint="check the password stored for this endpoint, the user name and --auth",
        )
    if isinstance(exc, WSManFaultError):
        return _wsman_fault(exc, connection)
    if isinstance(exc, WinRMTransportError):
        return _http_status(exc.code, connection)
    if isinstance(exc, http.SSLError):
        return _tls_failure(exc, url)
    if isinstance(exc, http.ConnectTimeout):
        return ConnectionFailed(
            f"{url} did not accept a connection within {connection.connect_timeout:g} seconds",
            hint="check the server name, port and firewall, or raise --connect-timeout",
        )
    if isinstance(exc, http.Timeout):
        return ConnectionFailed(
            f"{url} did not answer within {connection.operation_timeout:g} seconds",
            hint="the server may be overloaded; raise --operation-timeout or retry later",
        )
    if isinstance(exc, http.ConnectionError):
        return _connection_error(exc, connection)
    if isinstance(exc, ImportError) and "credssp" in str(exc).lower():
        return UsageError(
            "CredSSP authentication needs the requests-credssp package",
            hint="pip install 'pypsrp[credssp]', or use --auth kerberos or ntlm",
        )
    if isinstance(exc, TimeoutError):
        return ConnectionFailed(f"{url} did not answer in time", hint="retry later")
    return ConnectionFailed(
        f"the session with {url} failed: {type(exc).__name__}: {first_line(exc)}",
        hint="retry; if it persists, check the Exchange server's event log",
    )


def _wsman_fault(exc: Any, connection: Connection) -> ConnectionFailed:
    reason = " ".join(str(exc.reason or "").split())
    if exc.code == WSMAN_RESOURCE_NOT_FOUND or "session configuration" in reason:
        return ConnectionFailed(
            f"{connection.url} has no session configuration "
            f"'{connection.configuration_name}' (WSMan resource URI not found)",
            hint=ENDPOINT_HINT,
        )
    if exc.code == WSMAN_ACCESS_DENIED:
        return ConnectionFailed(
            f"{connection.url} denied access to {connection.username}",
            hint="the account needs remote PowerShell enabled (Set-User -RemotePowerShellEnabled)",
        )
    return ConnectionFailed(
        f"{connection.url} refused the request: {reason or 'WSMan fault'} (code {exc.code})",
        hint="retry; if it persists, check the WinRM/IIS logs on the Exchange server",
    )


def _http_status(code: int, connection: Connection) -> ConnectionFailed:
    if code == 404:
        return ConnectionFailed(
            f"{connection.url} was not found (HTTP 404): no remote shell at this path",
            hint=ENDPOINT_HINT,
        )
    if code >= 500:
        return ConnectionFailed(
            f"{connection.url} failed with HTTP {code} (server error)",
            hint="retry; if it persists, check the IIS and MSExchange logs on the server",
        )
    return ConnectionFailed(
        f"{connection.url} answered HTTP {code}", hint="check --server, the path and --auth"
    )


def _tls_failure(exc: BaseException, url: str) -> ConnectionFailed:
    verify = _find_cause(exc, ssl.SSLCertVerificationError)
    if verify is not None:
        detail = getattr(verify, "verify_message", None) or "verification failed"
        return ConnectionFailed(
            f"the certificate of {url} could not be verified ({detail})",
            hint="pass --ca-file with the CA that issued it (or --insecure, not recommended)",
        )
    return ConnectionFailed(
        f"the TLS handshake with {url} failed: {first_line(_deepest(exc))}",
        hint="check that the server speaks https on this port, or use http://",
    )


def _connection_error(exc: BaseException, connection: Connection) -> ConnectionFailed:
    where = f"{connection.server}:{connection.port}"
    if _find_cause(exc, ConnectionRefusedError) is not None or "refused" in str(exc).lower():
        return ConnectionFailed(
            f"connection refused by {where}: nothing listens there",
            hint="check --server and the port (5985 http, 5986 or 443 https) and the firewall",
        )
    if _find_cause(exc, socket.gaierror) is not None or "resolve" in str(exc).lower():
        return ConnectionFailed(
            f"the name {connection.server} could not be resolved",
            hint="check --server and DNS",
        )
    return ConnectionFailed(
        f"{connection.url} closed the connection without an answer",
        hint="the server may expect https (or http) on this port, or it restarted; retry",
    )


def _find_cause(exc: BaseException, kind: type[_E]) -> _E | None:
    return next((c for c in causes(exc) if isinstance(c, kind)), None)


def _deepest(exc: BaseException) -> BaseException:
    *_, last = causes(exc)
    return last
