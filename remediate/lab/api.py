"""The seam between the lab's protocol half (WSMan/PSRP) and its Exchange half (cmdlets).

The protocol half decodes each PSRP command into a name and Python values and calls
``CommandRunner.invoke``; the Exchange half answers with ``LabObject`` records, host lines
("What if: ...") and warnings, or raises ``CmdletError``. The protocol half turns those back
into PSRP output, host calls and error records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class LabCredential:
    """A PSCredential as the lab received it, password already decrypted."""

    username: str
    password: str

    def __repr__(self) -> str:  # never show the password, even in a traceback
        return f"LabCredential(username={self.username!r}, password=<hidden>)"


@dataclass
class LabObject:
    """An object returned to the client, shaped like Exchange's deserialized objects.

    ``type_names`` most-derived first, without the ``Deserialized.`` prefix (the protocol
    half adds it). Property values: str, int, bool, None, datetime, list of those, or a
    nested LabObject.
    """

    type_names: list[str]
    properties: dict[str, Any]
    to_string: str


@dataclass
class CmdletError(Exception):
    """An error record. ``terminating`` ends the pipeline Failed; otherwise it goes to the
    error stream and the pipeline continues.
    """

    message: str
    error_id: str
    category: str = "NotSpecified"  # a System.Management.Automation.ErrorCategory name
    exception_type: str = "System.Management.Automation.RuntimeException"
    target: str | None = None
    terminating: bool = True

    def __str__(self) -> str:
        return self.message


class HostSink(Protocol):
    """Where a cmdlet writes host text and warnings."""

    def write_host(self, line: str) -> None: ...

    def write_warning(self, line: str) -> None: ...


@dataclass
class CommandCall:
    """One command of a pipeline. ``parameters`` keeps order; a name of None is positional.

    Values: str, int, bool, None (a switch given without value), list, LabCredential.
    """

    name: str
    parameters: list[tuple[str | None, Any]] = field(default_factory=list)


class CommandRunner(Protocol):
    """One per shell (runspace pool): per-shell state, shared organisation."""

    def invoke(
        self, call: CommandCall, pipeline_input: list[LabObject], host: HostSink
    ) -> list[LabObject]: ...
