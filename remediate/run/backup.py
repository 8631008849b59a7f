"""Backups taken before a change: the connector as it was (JSON, no secret) and an undo script.

A backup holds the connector's settings as Get-SendConnector reported them (the credential
only as its user name: Exchange never returns a password) and the plan that was about to be
applied, so ``remediate undo`` can derive the undo plan later. Files live in
``state_dir()/backups`` (remediate.core.paths),
directory 0700, files 0600 (owner-only ACL on Windows).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remediate.core.errors import UsageError
from remediate.core.exchange import (
    AuthMechanism,
    CredentialState,
    ProtocolLoggingLevel,
    SendConnector,
    TlsAuthLevel,
)
from remediate.core.filenames import file_name_part
from remediate.core.files import create_private, private_directory, read_json, script_bytes
from remediate.core.paths import state_dir
from remediate.core.plan import CredentialRef, Parameter, ParamValue, Plan, Step, StepKind, Switch
from remediate.core.undo import undo_plan
from remediate.render.script import render_script

if TYPE_CHECKING:
    from remediate.remote.connections import Connection

FORMAT = 1
MAX_BACKUP_BYTES = 1024 * 1024  # a backup is a few KiB
_ENUMS: dict[str, type[Enum]] = {
    cls.__name__: cls
    for cls in (AuthMechanism, TlsAuthLevel, ProtocolLoggingLevel, CredentialState)
}


def backup_dir(environ: Mapping[str, str] | None = None) -> Path:
    return state_dir(environ) / "backups"


def checked_backup_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The backup directory, created or checked (private, ours, no symbolic link)."""
    directory = backup_dir(environ)
    private_directory(directory.parent)  # $XDG_STATE_HOME/remediate
    return private_directory(directory)


@dataclass(frozen=True)
class Backup:
    path: Path
    script: Path
    connector: SendConnector
    endpoint: str
    url: str
    created: str
    applied: Plan

    def undo_plan(self, *, what_if: bool = False) -> Plan:
        return undo_plan(self.connector, self.applied, what_if=what_if)


def write_backup(
    connection: Connection,
    connector: SendConnector,
    plan: Plan,
    *,
    environ: Mapping[str, str] | None = None,
    script: bool = True,
    directory: Path | None = None,
) -> Backup:
    """Save ``connector`` and ``plan`` (JSON) and the rendered undo script, before a change.
    ``script=False`` writes the JSON only (bulk renders one undo script per run);
    ``directory`` is one ``checked_backup_dir`` gave (bulk checks it once per run)."""
    now = datetime.now(UTC)
    created = now.isoformat(timespec="seconds")
    if directory is None:
        directory = checked_backup_dir(environ)
    stem = f"{now:%Y%m%dT%H%M%S%fZ}-{file_name_part(connector.name)}"
    backup = Backup(
        path=directory / f"{stem}.json",
        script=directory / f"{stem}-undo.ps1",
        connector=connector,
        endpoint=connection.label,
        url=connection.url,
        created=created,
        applied=plan,
    )
    document = {
        "format": FORMAT,
        "created": created,
        "endpoint": backup.endpoint,
        "url": backup.url,
        "connector": connector.to_json(),
        "plan": plan_to_json(backup.applied),
    }
    _write_private(backup.path, (json.dumps(document, indent=2) + "\n").encode("utf-8"))
    if script:
        _write_private(backup.script, script_bytes(render_script(backup.undo_plan(), now)))
    return backup


def load_backup(path: Path | str) -> Backup:
    """A backup written by ``write_backup``; UsageError naming the file when it is not one."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such backup file")
    document = read_json(path, limit=MAX_BACKUP_BYTES, what="a remediate backup")
    try:
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        if document.get("format") != FORMAT:
            raise ValueError(f"unknown format {document.get('format')!r}")
        stem = path.name.removesuffix(".json")
        return Backup(
            path=path,
            script=path.with_name(f"{stem}-undo.ps1"),
            connector=SendConnector.from_properties(document["connector"]),
            endpoint=str(document["endpoint"]),
            url=str(document["url"]),
            created=str(document["created"]),
            applied=plan_from_json(document["plan"]),
        )
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        # the shape is checked as it is read: any surprise is this one error, not a traceback
        detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise UsageError(f"{path}: not a remediate backup ({detail})") from None


def _write_private(path: Path, data: bytes) -> None:
    fd = create_private(path)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


# --- plans as JSON ---------------------------------------------------------------------------


def value_to_json(value: ParamValue) -> dict[str, Any]:
    """A parameter value with its type; a credential as its user and keyring entry only."""
    if isinstance(value, Switch):
        return {"type": "switch"}
    if isinstance(value, CredentialRef):
        return {
            "type": "credential",
            "username": value.username,
            "service": value.service,
            "key": value.key,
            "purpose": value.purpose,
        }
    if isinstance(value, Enum):
        return {"type": "enum", "enum": type(value).__name__, "value": value.value}
    if isinstance(value, tuple):
        return {"type": "list", "value": list(value)}
    return {"type": "plain", "value": value}


def value_from_json(data: Mapping[str, Any]) -> ParamValue:
    kind = data["type"]
    if kind == "switch":
        return Switch.PRESENT
    if kind == "credential":
        return CredentialRef(data["username"], data["service"], data["key"], data["purpose"])
    if kind == "enum":
        if data["enum"] not in _ENUMS:
            raise ValueError(f"unknown value type {data['enum']!r}")
        return _ENUMS[data["enum"]](data["value"])
    if kind == "list":
        if not isinstance(data["value"], list):
            raise ValueError("a list value that is not a list")
        return tuple(str(v) for v in data["value"])
    if kind == "plain" and isinstance(data["value"], str | int | bool | None):
        return data["value"]
    raise ValueError(f"unknown value type {kind!r}")


def _params_to_json(params: tuple[Parameter, ...]) -> list[dict[str, Any]]:
    return [{"name": p.name, **value_to_json(p.value)} for p in params]


def _params_from_json(items: list[Mapping[str, Any]]) -> tuple[Parameter, ...]:
    return tuple(
        Parameter(str(item["name"]), value_from_json(item)) for item in _list_of_dicts(items)
    )


def _list_of_dicts(items: Any) -> list[Mapping[str, Any]]:
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValueError("a list of objects was expected")
    return items


def plan_to_json(plan: Plan) -> dict[str, Any]:
    return {
        "playbook": plan.playbook,
        "event_id": plan.event_id,
        "connector": plan.connector,
        "title": plan.title,
        "what_if": plan.what_if,
        "notes": list(plan.notes),
        "steps": [
            {
                "cmdlet": s.cmdlet,
                "kind": s.kind.value,
                "reason": s.reason,
                "template": s.template,
                "action": s.action,
                "parameters": _params_to_json(s.parameters),
                "replaces": None if s.replaces is None else _params_to_json(s.replaces),
            }
            for s in plan.steps
        ],
    }


def plan_from_json(data: Mapping[str, Any]) -> Plan:
    steps = tuple(
        Step(
            cmdlet=str(s["cmdlet"]),
            parameters=_params_from_json(s["parameters"]),
            kind=StepKind(s["kind"]),
            reason=str(s["reason"]),
            template=str(s["template"]),
            action=str(s.get("action", "")),
            replaces=None if s.get("replaces") is None else _params_from_json(s["replaces"]),
        )
        for s in _list_of_dicts(data["steps"])
    )
    return Plan(
        playbook=str(data["playbook"]),
        event_id=int(data["event_id"]),
        connector=str(data["connector"]),
        steps=steps,
        what_if=bool(data.get("what_if", False)),
        title=str(data.get("title", "")),
        notes=tuple(str(n) for n in data.get("notes", ())),
    )
