"""Desired (a row) against current (the connector read) -> the change plan per connector.

Plans come from ``remediate.core.planner.build_plan``, as for ``plan``/``apply``; bulk runs only
their Set-SendConnector steps (the state was read once per endpoint; queues are left to
Exchange's own retry schedule), so a connector already as wanted gets an empty plan.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from remediate.bulk.spec import Row
from remediate.core import preflight
from remediate.core.errors import UsageError
from remediate.core.exchange import SendConnector
from remediate.core.options import FixOptions
from remediate.core.plan import CredentialRef, Plan
from remediate.core.planner import build_plan
from remediate.run.report import differences

SET_CMDLET = "set-sendconnector"


@dataclass(frozen=True)
class Target:
    """One connector a row selected: its state before and its plan, or why none."""

    row: Row
    before: SendConnector
    plan: Plan | None
    error: str | None = None

    @property
    def name(self) -> str:
        return self.before.name

    @property
    def pending(self) -> bool:
        return self.plan is not None and bool(self.plan.changes)

    @cached_property  # shown, reported and recorded: checked once
    def after(self) -> SendConnector:
        """The connector as the plan would leave it (the rules Exchange applies included)."""
        if not self.pending:
            return self.before
        assert self.plan is not None
        checked = preflight.check(self.plan.changes, self.before)
        return checked.after or self.before

    def changes(self) -> list[tuple[str, Any, Any]]:
        """(property, before, after), the re-entered credential included (a copy: shown and
        reported, computed once)."""
        return list(self._changes)

    @cached_property
    def _changes(self) -> tuple[tuple[str, Any, Any], ...]:
        rows = differences(self.before, self.after)
        for ref in self.plan.credentials if self.plan else ():
            if not any(name == "AuthenticationCredential" for name, _, _ in rows):
                rows.append(
                    ("AuthenticationCredential", str(self.before.credential), _reentered(ref))
                )
        return tuple(rows)


def _reentered(ref: CredentialRef) -> str:
    return f"{ref.username} (password re-entered)"


@dataclass(frozen=True)
class Unmatched:
    """A row that selected no connector."""

    row: Row
    message: str


def plan_endpoint(
    rows: list[Row], connectors: list[SendConnector], *, what_if: bool = False
) -> tuple[list[Target], list[Unmatched]]:
    """Every connector the rows select, in file order, with its plan. A connector selected by
    two rows gets no plan (which should win is not ours to guess)."""
    chosen: dict[str, list[Row]] = {}
    by_guid = {c.guid or c.name: c for c in connectors}
    by_name: dict[str, list[SendConnector]] = {}  # a row naming a connector: no scan (linear)
    for connector in connectors:
        for key in {connector.name.lower(), connector.guid.lower()} - {""}:
            by_name.setdefault(key, []).append(connector)
    unmatched = []
    for row in rows:
        if row.connector is not None:
            hits = by_name.get(row.connector.lower(), [])
        else:
            hits = [c for c in connectors if row.selects(c)]
        if not hits:
            unmatched.append(Unmatched(row, _no_match(row)))
        for connector in hits:
            chosen.setdefault(connector.guid or connector.name, []).append(row)
    targets = []
    for key, selecting in chosen.items():
        connector = by_guid[key]
        if len(selecting) > 1:
            lines = ", ".join(str(r.line) for r in selecting)
            message = f"selected by the rows on lines {lines}: keep one"
            targets.append(Target(selecting[0], connector, None, message))
        else:
            targets.append(target_for(selecting[0], connector, what_if=what_if))
    targets.sort(key=lambda t: t.row.line)
    return targets, unmatched


def target_for(row: Row, connector: SendConnector, *, what_if: bool = False) -> Target:
    try:
        options = FixOptions(connector=connector.name, **row.options)
        plan = build_plan(
            row.playbook,
            options,
            current=connector,
            what_if=what_if,
            credential_ref_factory=row.credential_ref,
        )
    except UsageError as refused:
        return Target(row, connector, None, f"refused before sending: {refused.message}")
    steps = tuple(s for s in plan.changes if s.cmdlet.lower() == SET_CMDLET)
    return Target(row, connector, replace(plan, steps=steps))


def _no_match(row: Row) -> str:
    if row.connector is not None:
        return f"Send connector '{row.connector}' not found"
    return f"no Send connector has a smart host matching {row.smart_host_match!r}"


def diff_lines(endpoint: str, target: Target) -> list[str]:
    """Before/after of one connector in the spirit of ``ansible --check --diff``."""
    head = f"{endpoint}: {target.name}"
    if target.error is not None:
        return [f"!!! {head}: {target.error}"]
    changes = target.changes()
    if not changes:
        return [f"=== {head}: ok, nothing to change"]
    lines = [f"--- {head} (before)", f"+++ {head} (after)"]
    for name, old, new in changes:
        lines.append(f"-{name}: {_text(old)}")
        lines.append(f"+{name}: {_text(new)}")
    return lines


def _text(value: Any) -> str:
    if value is None or value == []:
        return "(none)"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)
