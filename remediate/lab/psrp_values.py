"""Values across the lab's PSRP boundary: decode what the client sends into plain Python
(``api.CommandCall``, ``api.LabCredential``) and encode what the Exchange half answers
(``api.CmdletError``) as the records PowerShell would serialize; objects go through
``wire``, Exchange's serializer rules.
"""

from __future__ import annotations

import datetime
from typing import Any

from psrpcore.types import (
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    PSCredential,
    PSSecureString,
    WarningRecord,
)

from remediate.lab.api import CmdletError, CommandCall, LabCredential

NO_LANGUAGE_MESSAGE = (
    "The syntax is not supported by this runspace. This can occur if the runspace is in "
    "no-language mode."
)

# .NET base classes of the exceptions the lab reports, most-derived first (after the type).
_EXCEPTION_BASES: dict[str, list[str]] = {
    "System.Management.Automation.CommandNotFoundException": [
        "System.Management.Automation.RuntimeException",
        "System.SystemException",
    ],
    "System.Management.Automation.ParameterBindingException": [
        "System.Management.Automation.RuntimeException",
        "System.SystemException",
    ],
    "System.Management.Automation.ParseException": [
        "System.Management.Automation.RuntimeException",
        "System.SystemException",
    ],
    "System.Management.Automation.RuntimeException": ["System.SystemException"],
}
_INT32 = range(-(2**31), 2**31)


class UnsupportedValue(Exception):
    """A parameter value the lab cannot hand to a cmdlet (raised as a binding error)."""


def decode_value(value: Any) -> Any:
    """A deserialized PSRP value as the plain Python the Exchange half expects."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, PSCredential):
        password = value.Password
        secret = password.decrypt() if isinstance(password, PSSecureString) else str(password)
        return LabCredential(username=str(value.UserName), password=secret)
    if isinstance(value, PSSecureString):
        return value.decrypt()
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, datetime.datetime):
        return datetime.datetime.fromtimestamp(value.timestamp(), tz=value.tzinfo)
    if isinstance(value, dict):
        return {decode_value(k): decode_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [decode_value(v) for v in value]
    raise UnsupportedValue(type(value).__name__)


def decode_call(name: str, parameters: list[tuple[str | None, Any]]) -> CommandCall:
    """A psrpcore command as an ``api.CommandCall``. Raises CmdletError on a value the lab
    cannot bind, as PowerShell would fail to convert it."""
    decoded: list[tuple[str | None, Any]] = []
    for param, value in parameters:
        try:
            decoded.append((param, decode_value(value)))
        except UnsupportedValue as exc:
            raise CmdletError(
                message=(
                    f"Cannot process argument transformation on parameter '{param}'. Cannot "
                    f'convert the value of type "{exc}" that the lab received.'
                ),
                error_id=f"ParameterArgumentTransformationError,{name}",
                category="InvalidData",
                exception_type="System.Management.Automation.ParameterBindingException",
                target=param,
            ) from None
    return CommandCall(name=name, parameters=decoded)


class _CategoryInfo(ErrorCategoryInfo):
    """PowerShell's own CategoryInfo text: ``Category: (Target:Type) [Activity], Reason``."""

    def __str__(self) -> str:
        return (
            f"{self.Category.name}: ({self.TargetName or ''}:{self.TargetType or ''}) "
            f"[{self.Activity or ''}], {self.Reason or ''}"
        )


# Errors raised before any cmdlet runs carry no activity in PowerShell.
_NO_ACTIVITY = {
    "System.Management.Automation.CommandNotFoundException",
    "System.Management.Automation.ParseException",
}


def _short_name(type_name: str) -> str:
    return type_name.rsplit(".", 1)[-1]


def error_record(error: CmdletError, activity: str | None) -> ErrorRecord:
    """An ErrorRecord shaped like PowerShell's: exception type chain, CategoryInfo with the
    exception's short name as Reason, the FullyQualifiedErrorId and the target."""
    exception = NETException(Message=error.message, HResult=-2146233087)
    bases = _EXCEPTION_BASES.get(error.exception_type, [])
    exception.PSObject.type_names = [
        error.exception_type,
        *bases,
        "System.Exception",
        "System.Object",
    ]
    exception.PSObject.to_string = f"{error.exception_type}: {error.message}"
    try:
        category = ErrorCategory[error.category]
    except KeyError:
        category = ErrorCategory.NotSpecified
    if error.exception_type in _NO_ACTIVITY:
        activity = None
    info = _CategoryInfo(
        Category=category,
        Activity=activity or "",
        Reason=_short_name(error.exception_type),
        TargetName=error.target or "",
        TargetType="String" if error.target is not None else "",
    )
    record = ErrorRecord(
        Exception=exception,
        CategoryInfo=info,
        TargetObject=error.target,
        FullyQualifiedErrorId=error.error_id,
    )
    record.PSObject.to_string = error.message
    return record


def no_language_error(script: str) -> CmdletError:
    """What Exchange's no-language runspace answers to script text."""
    return CmdletError(
        message=NO_LANGUAGE_MESSAGE,
        error_id="ScriptsNotAllowed",
        category="ParserError",
        exception_type="System.Management.Automation.ParseException",
        target=script,
    )


def input_refused() -> CmdletError:
    """Objects piped in by the client: the lab's cmdlets take them only from each other."""
    return CmdletError(
        message=(
            "The lab does not accept pipeline input sent by the client. Name the object with "
            "-Identity instead."
        ),
        error_id="InputObjectNotBound",
        category="InvalidArgument",
        exception_type="System.Management.Automation.ParameterBindingException",
    )


def internal_error(exc: Exception) -> CmdletError:
    """A bug in the lab's Exchange half, reported to the client as a terminating error."""
    return CmdletError(
        message=f"The lab failed to run this command ({type(exc).__name__}).",
        error_id="LabInternalError",
        category="NotSpecified",
    )


def warning_record(message: str) -> WarningRecord:
    """A warning with its ToString set, so clients that print the record show the text."""
    record = WarningRecord(Message=message)
    record.PSObject.to_string = message
    return record
