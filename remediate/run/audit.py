"""The audit log: one JSON line per change step of an applied plan, never a secret.

``$XDG_STATE_HOME/remediate/audit.log`` (file 0600). Each line: time (UTC, ISO 8601),
operator (local user), admin (the Exchange account used), endpoint, url, connector, playbook,
event, step, cmdlet, changes ({parameter: {old, new}}), result (changed; unchanged: Exchange
warned that no settings were modified; what-if, failed, interrupted, not run), error (for a
failed step), backup (path of the backup file).
A credential appears only as the user name the tool sent (its old value only as set / not
set / unknown: Exchange never returns a user name); ``last_set_credential`` reads that name
back, labelled as the tool's own record.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remediate.core.exchange import PROPERTY_NAMES, SendConnector
from remediate.core.files import open_private_append, private_directory, windows
from remediate.core.paths import state_dir
from remediate.core.plan import CredentialRef, ParamValue, Step, Switch
from remediate.run.execute import ExecutionResult, changed_something

if TYPE_CHECKING:
    from remediate.core.plan import Plan
    from remediate.remote.connections import Connection
    from remediate.run.backup import Backup

_ATTRIBUTES = {prop.lower(): attr for attr, prop in PROPERTY_NAMES.items()}
_NOT_SETTINGS = {"identity", "confirm", "whatif", "filter", "force", "server"}


def audit_path(environ: Mapping[str, str] | None = None) -> Path:
    return state_dir(environ) / "audit.log"


def plain_value(value: Any) -> Any:
    """A value as JSON: enums by name, lists, a credential as its user name only."""
    if isinstance(value, CredentialRef):
        return {"credential_user": value.username}
    if isinstance(value, Switch):
        return True
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [plain_value(v) for v in value]
    return value


def _old_value(step: Step, name: str, before: SendConnector) -> ParamValue:
    for p in step.replaces or ():
        if p.name.lower() == name.lower():
            return p.value
    attr = _ATTRIBUTES.get(name.lower())
    return getattr(before, attr) if attr else None


def changes_of(step: Step, before: SendConnector) -> dict[str, dict[str, Any]]:
    """{parameter: {"old": ..., "new": ...}} for the settings a step sets."""
    out: dict[str, dict[str, Any]] = {}
    for p in step.parameters:
        if p.name.lower() in _NOT_SETTINGS:
            continue
        old = _old_value(step, p.name, before)
        if isinstance(p.value, CredentialRef):
            # Exchange never returns the old user name: only whether one was set.
            new: Any = {"credential_user": p.value.username}
            out[p.name] = {"old": {"credential": before.credential.value}, "new": new}
            continue
        out[p.name] = {"old": plain_value(old), "new": plain_value(p.value)}
    return out


def entries(
    connection: Connection,
    plan: Plan,
    before: SendConnector,
    result: ExecutionResult,
    *,
    backup: Backup | None = None,
    operator: str | None = None,
) -> list[dict[str, Any]]:
    """The audit lines for one run (one per change step of the plan)."""
    time = datetime.now(UTC).isoformat(timespec="seconds")
    outcome = {id(r.step): r for r in result.results}
    base = {
        "time": time,
        "operator": operator or _operator(),
        "admin": connection.username,
        "endpoint": connection.label,
        "url": connection.url,
        "connector": plan.connector,
        "playbook": plan.playbook,
        "event": plan.event_id,
        "backup": str(backup.path) if backup else None,
    }
    lines = []
    for number, step in enumerate(plan.steps, start=1):
        if not step.is_change:
            continue
        ran = outcome.get(id(step))
        error = None
        if ran is not None and not ran.ok:
            status = "failed"
            error = ran.errors[0].message if ran.errors else "failed without an error record"
        elif ran is not None:
            status = (
                "what-if"
                if step.has_param("WhatIf")
                else "changed"
                if changed_something(ran)
                else "unchanged"
            )
        elif step is result.interrupted:
            status = "interrupted"
        else:
            status = "not run"
        lines.append(
            {
                **base,
                "step": number,
                "cmdlet": step.cmdlet,
                "changes": changes_of(step, before),
                "result": status,
                "error": error,
            }
        )
    return lines


def record(
    connection: Connection,
    plan: Plan,
    before: SendConnector,
    result: ExecutionResult,
    *,
    environ: Mapping[str, str] | None = None,
    backup: Backup | None = None,
) -> Path:
    """Append this run's lines to the audit log; returns its path."""
    lines = entries(connection, plan, before, result, backup=backup)
    path, fd = open_log(environ)
    try:
        append(fd, lines)
    finally:
        os.close(fd)
    return path


def append(fd: int, lines: list[dict[str, Any]]) -> None:
    """Write ``lines`` to the log open as ``fd`` (O_APPEND), in one write when the system
    takes it whole."""
    data = "".join(json.dumps(line, sort_keys=False) + "\n" for line in lines).encode("utf-8")
    while data:
        data = data[os.write(fd, data) :]


@dataclass(frozen=True)
class LastSetCredential:
    """The relay user name remediate itself last sent to a connector, from its audit log:
    the only user name the tool can know, since Exchange never returns it."""

    username: str
    time: str

    def label(self) -> str:
        return f"{self.username} (set by remediate on {self.time[:10]}, from its audit log)"


def last_set_credential(
    url: str, connector: str, environ: Mapping[str, str] | None = None
) -> LastSetCredential | None:
    """The newest changed credential this tool recorded for ``connector`` at ``url``."""
    path = audit_path(environ)
    found: LastSetCredential | None = None
    try:
        handle = path.open(encoding="utf-8", errors="replace")
    except OSError:
        return None
    with handle:
        for line in handle:
            try:
                entry = json.loads(line)
                new = entry["changes"]["AuthenticationCredential"]["new"]["credential_user"]
            except (ValueError, KeyError, TypeError):
                continue
            if (
                entry.get("result") == "changed"
                and entry.get("url") == url
                and str(entry.get("connector", "")).lower() == connector.lower()
                and isinstance(new, str)
            ):
                found = LastSetCredential(new, str(entry.get("time", "")))
    return found


def open_log(environ: Mapping[str, str] | None = None) -> tuple[Path, int]:
    """The audit log open for appending: the state directory 0700, the file 0600, neither
    through a symbolic link (UsageError saying so)."""
    path = audit_path(environ)
    private_directory(path.parent)
    return path, open_private_append(path)


def check_log(environ: Mapping[str, str] | None = None) -> Path:
    """Make sure the audit log can be written, before a change is made that it must record."""
    path, fd = open_log(environ)
    os.close(fd)
    return path


@functools.cache  # one user per process; getuser may read the password database each time
def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown user" if windows() else f"uid {os.getuid()}"
