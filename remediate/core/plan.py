"""Plans: the one object that feeds both the dry-run script and the execution.

A plan is an ordered list of steps; each step is exactly one cmdlet call with ordered
parameters, marked read or change, carrying the documented action it serves and, for a
change, the values it replaces (so an undo plan can be derived). A credential is only ever
a ``CredentialRef``: who, and where the secret lives; never the secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum, StrEnum


class StepKind(StrEnum):
    READ = "read"
    CHANGE = "change"


class Switch(Enum):
    """A switch parameter given without a value (``-WhatIf``)."""

    PRESENT = "present"


SWITCH = Switch.PRESENT

# The keyring service holding relay account passwords, keyed by the relay user name (README,
# "Passwords"); the one definition: planner, bulk and the wizard all refer to this one.
RELAY_SERVICE = "remediate:relay"


@dataclass(frozen=True)
class CredentialRef:
    """A credential by reference: the user name and the keyring entry holding the password.

    ``service`` and ``key`` name the keyring entry; ``purpose`` is the one-line reason shown
    when the password is asked for (Get-Credential's -Message in a dry-run script).
    """

    username: str
    service: str
    key: str
    purpose: str = "Password for the smart-host relay account"


ParamValue = str | int | bool | tuple[str, ...] | Switch | CredentialRef | Enum | None


@dataclass(frozen=True)
class Parameter:
    name: str
    value: ParamValue


@dataclass(frozen=True)
class Step:
    """One cmdlet call.

    ``template`` names the file in ps_templates/ that renders it; ``replaces`` holds, for a
    change, the connector's values before the change (None when the plan was built without
    reading the connector, as in an offline dry run).
    """

    cmdlet: str
    parameters: tuple[Parameter, ...]
    kind: StepKind
    reason: str
    template: str
    action: str = ""
    replaces: tuple[Parameter, ...] | None = None

    def param(self, name: str) -> ParamValue:
        for p in self.parameters:
            if p.name.lower() == name.lower():
                return p.value
        raise KeyError(name)

    def has_param(self, name: str) -> bool:
        return any(p.name.lower() == name.lower() for p in self.parameters)

    @property
    def credential(self) -> CredentialRef | None:
        for p in self.parameters:
            if isinstance(p.value, CredentialRef):
                return p.value
        return None

    @property
    def is_change(self) -> bool:
        return self.kind is StepKind.CHANGE


@dataclass(frozen=True)
class Plan:
    """An ordered list of steps for one connector, from one playbook."""

    playbook: str
    event_id: int
    connector: str
    steps: tuple[Step, ...]
    what_if: bool = False
    title: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    @property
    def changes(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.is_change)

    @property
    def credentials(self) -> tuple[CredentialRef, ...]:
        seen: list[CredentialRef] = []
        for step in self.steps:
            cred = step.credential
            if cred is not None and cred not in seen:
                seen.append(cred)
        return tuple(seen)
