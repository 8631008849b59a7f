"""``bulk undo REPORT``: the connectors a run changed, each with the undo plan of its backup.

Each changed connector of the report becomes a row (its endpoint, its name, its line in the
input file); the planner reads the connector now and plans the backup's undo, only where the
connector does not already have the backup's values.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from remediate.bulk.diff import SET_CMDLET, Target, Unmatched
from remediate.bulk.spec import BulkSpec, Row
from remediate.core.errors import UsageError
from remediate.core.exchange import SendConnector
from remediate.core.playbooks import find
from remediate.remote.connections import Connection
from remediate.run.backup import Backup, load_backup


class UndoSet:
    """The rows to undo and their backups (by line)."""

    def __init__(self, report_path: Path, data: dict[str, Any]) -> None:
        self.spec = BulkSpec(report_path)
        self.backups: dict[tuple[Connection, int, str], Backup] = {}
        for endpoint in data["endpoints"]:
            connection = _connection(endpoint)
            for item in endpoint.get("connectors", []):
                if not item.get("backup"):
                    continue
                saved = load_backup(item["backup"])
                row = Row(
                    line=int(item["line"]),
                    endpoint=connection,
                    playbook=find(saved.applied.playbook),
                    options={},
                    connector=saved.connector.name,
                )
                self.spec.rows.append(row)
                self.backups[(connection, row.line, saved.connector.name)] = saved

    def plan(
        self, rows: list[Row], connectors: list[SendConnector]
    ) -> tuple[list[Target], list[Unmatched]]:
        from remediate.ui.commands.undo import already_restored

        by_name = {c.name.lower(): c for c in connectors}
        targets, unmatched = [], []
        for row in rows:
            saved = self.backups[(row.endpoint, row.line, row.connector or "")]
            current = by_name.get((row.connector or "").lower())
            if current is None:
                unmatched.append(Unmatched(row, f"Send connector '{row.connector}' not found"))
                continue
            undo = saved.undo_plan()
            steps = tuple(s for s in undo.changes if s.cmdlet.lower() == SET_CMDLET)
            if already_restored(undo, current):
                steps = ()
            targets.append(Target(row, current, replace(undo, steps=steps)))
        return targets, unmatched


def _connection(endpoint: dict[str, Any]) -> Connection:
    data = dict(endpoint.get("connection") or {})
    profile = data.pop("profile", None)
    try:
        connection = Connection.from_json(profile, data)
    except UsageError as exc:
        raise UsageError(f"the report's endpoint {endpoint.get('endpoint')!r}: {exc}") from None
    well_formed = (
        isinstance(connection.server, str)
        and connection.server
        and isinstance(connection.port, int)
        and not isinstance(connection.port, bool)
        and connection.scheme in ("http", "https")
        and isinstance(connection.path, str)
        and isinstance(connection.configuration_name, str)
        and isinstance(connection.username, str | None)
        and isinstance(profile, str | None)
    )
    if not well_formed:
        raise UsageError(f"the report's endpoint {endpoint.get('endpoint')!r}: not a connection")
    return connection
