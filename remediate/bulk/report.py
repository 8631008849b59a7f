"""After a bulk run: the recap per endpoint and per connector, and the JSON report.

The JSON report (format 1) holds, per endpoint, its connection (never a password) and per
connector its status, the properties changed and the paths of its backup, undo script and
audit log, so ``remediate bulk undo REPORT`` can restore what the run changed.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from remediate.bulk.runner import ConnectorOutcome, EndpointState, Status
from remediate.core.errors import UsageError
from remediate.core.files import create_private, read_json, write_file
from remediate.run.backup import plan_to_json
from remediate.run.report import table

FORMAT = 1
MAX_REPORT_BYTES = 64 * 1024 * 1024  # thousands of connectors take a few MiB


def totals(states: Sequence[EndpointState]) -> Counter[Status]:
    return Counter(o.status for s in states for o in s.outcomes)


def recap_lines(states: Sequence[EndpointState]) -> list[str]:
    """One table of every connector, then one line per endpoint and the totals."""
    rows = [
        (s.endpoint.label, o.connector, o.status.value, _detail(o))
        for s in states
        for o in sorted(s.outcomes, key=lambda o: o.line)
    ]
    lines = table(("ENDPOINT", "CONNECTOR", "STATUS", "DETAIL"), rows) if rows else []
    lines.append("")
    for state in states:
        counts = Counter(o.status for o in state.outcomes)
        lines.append(f"{state.endpoint.label}: {state.status.value} ({_counts(counts)})")
        if state.error is not None:
            lines.append(f"  {state.error}")
    lines.append(f"total: {_counts(totals(states))}")
    return lines


def _detail(outcome: ConnectorOutcome) -> str:
    """What changed, or why not."""
    if outcome.status in (Status.FAILED, Status.SKIPPED) or not outcome.changes:
        return outcome.message
    return ", ".join(outcome.changes)


def _counts(counts: Counter[Status]) -> str:
    return ", ".join(f"{status.value}={counts.get(status, 0)}" for status in Status)


def to_json(
    states: Sequence[EndpointState], source: Path, *, started: datetime, interrupted: bool
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "file": str(source),
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "interrupted": interrupted,
        "totals": {status.value: totals(states).get(status, 0) for status in Status},
        "endpoints": [
            {
                "endpoint": s.endpoint.label,
                "connection": {"profile": s.endpoint.profile, **s.endpoint.to_json()},
                "status": s.status.value,
                "error": s.error,
                "connectors": [
                    {
                        "connector": o.connector,
                        "line": o.line,
                        "status": o.status.value,
                        "message": o.message,
                        "changes": o.changes,
                        "backup": _path(o.backup),
                        "undo_script": _path(o.undo_script),
                        "audit": _path(o.audit),
                    }
                    for o in sorted(s.outcomes, key=lambda o: o.line)
                ],
            }
            for s in states
        ],
    }


def plan_json(states: Sequence[EndpointState], source: Path, output: Path | None) -> dict[str, Any]:
    """What ``bulk plan --json`` prints: per endpoint its connectors with their plans (or
    why none), the rows that matched nothing, and the totals of the recap line."""

    pending = [t for s in states for t in s.pending]
    return {
        "file": str(source),
        "output": _path(output),
        "totals": {
            "connectors_to_change": len(pending),
            "change_steps": sum(len(t.plan.changes) for t in pending if t.plan is not None),
            "refused": sum(
                len(s.unmatched) + sum(t.error is not None for t in s.targets) for s in states
            ),
            "endpoints_not_read": sum(s.error is not None for s in states),
        },
        "endpoints": [
            {
                "endpoint": s.endpoint.label,
                "error": s.error,
                "unmatched": [{"line": u.row.line, "message": u.message} for u in s.unmatched],
                "connectors": [
                    {
                        "connector": t.name,
                        "line": t.row.line,
                        "pending": t.pending,
                        "error": t.error,
                        "plan": None if t.plan is None else plan_to_json(t.plan),
                    }
                    for t in s.targets
                ],
            }
            for s in states
        ],
    }


def _path(path: Path | None) -> str | None:
    return None if path is None else str(path)


def write_report(path: Path, data: dict[str, Any]) -> None:
    """Write the report 0600 (it names servers, accounts and backup paths)."""
    write_file(path, json.dumps(data, indent=2) + "\n", what="--report", private=True)


def reserve_report(path: Path, *, force: bool) -> bool:
    """Claim ``path`` for this run's report before anything is sent: an existing file (the
    report of another run, maybe one running now) is refused unless ``force``. True when a
    placeholder was created (the caller removes it if the run stops before applying)."""
    if force:
        return False
    path = Path(path)
    try:
        fd = create_private(path)
    except FileExistsError:
        raise UsageError(
            f"--report {path}: the file exists (the report of another run?); nothing was sent",
            hint="give a new name, or add --force to replace it",
        ) from None
    except OSError as exc:
        raise UsageError(f"--report: cannot write {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps({"format": FORMAT, "running": True, "endpoints": []}) + "\n")
    return True


def read_report(path: Path) -> dict[str, Any]:
    """A report of ``bulk apply --report``, its shape checked (what ``bulk undo`` reads):
    one UsageError naming the file and the first thing wrong."""
    data = read_json(
        path, limit=MAX_REPORT_BYTES, what="a bulk report", cannot="cannot read the report"
    )
    if not isinstance(data, dict) or data.get("format") != FORMAT or "endpoints" not in data:
        raise UsageError(f"{path}: not a bulk report written by 'remediate bulk apply --report'")
    problem = _shape_problem(data)
    if problem is not None:
        raise UsageError(f"{path}: not a bulk report ({problem})")
    return data


def _shape_problem(data: dict[str, Any]) -> str | None:
    endpoints = data["endpoints"]
    if not isinstance(endpoints, list):
        return "'endpoints' is not a list"
    for e, endpoint in enumerate(endpoints, start=1):
        if not isinstance(endpoint, dict):
            return f"endpoint {e} is not an object"
        if not isinstance(endpoint.get("connection", {}), dict):
            return f"endpoint {e}: 'connection' is not an object"
        connectors = endpoint.get("connectors", [])
        if not isinstance(connectors, list):
            return f"endpoint {e}: 'connectors' is not a list"
        for c, item in enumerate(connectors, start=1):
            if not isinstance(item, dict):
                return f"endpoint {e}, connector {c} is not an object"
            if not isinstance(item.get("backup"), str | None):
                return f"endpoint {e}, connector {c}: 'backup' is not a path"
            line = item.get("line")
            if item.get("backup") and (isinstance(line, bool) or not isinstance(line, int)):
                return f"endpoint {e}, connector {c}: 'line' is not a number"
    return None
