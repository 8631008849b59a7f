"""The ``--json`` document of ``apply`` and ``undo`` (schema ``change-run``): the plan as
data, each step's outcome, the connector before and after, where the backup, undo script and
audit log went, and the queues after Retry-Queue. Never a secret: a credential appears as its
user name, its old value as set / not set / unknown."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from remediate.core.queuejson import queue_json
from remediate.run.backup import plan_to_json

if TYPE_CHECKING:
    from remediate.run.pipeline import Outcome
    from remediate.run.queue_watch import QueueVerdict


def change_run_json(command: str, endpoint: str, outcome: Outcome) -> dict[str, Any]:
    """One run's document; an outcome not sent: nothing to change (the connector already
    has the settings)."""

    plan = outcome.plan
    if not outcome.sent:
        result = "no change"
    elif not outcome.ok:
        result = "failed"
    else:
        result = "what-if" if plan.what_if else "applied"
    saved = outcome.saved
    return {
        "command": command,
        "endpoint": endpoint,
        "connector": plan.connector,
        "result": result,
        "ok": outcome.ok,
        "plan": plan_to_json(plan),
        "steps": _steps(outcome),
        "before": outcome.before.to_json(),
        "after": outcome.after.to_json(),
        "backup": str(saved.path) if saved is not None else None,
        "undo_script": str(saved.script) if saved is not None else None,
        "audit_log": str(outcome.audit) if outcome.audit else None,
        "queues": None if outcome.verdict is None else _verdict(outcome.verdict),
        "exit_status": int(outcome.exit_status),
    }


def _steps(outcome: Outcome) -> list[dict[str, Any]]:
    plan = outcome.plan
    results = {id(r.step): r for r in outcome.result.results}
    interrupted = outcome.result.interrupted
    out = []
    for number, step in enumerate(plan.steps, start=1):
        result = results.get(id(step))
        if result is not None:
            status = "ok" if result.ok else "failed"
        elif step is interrupted:
            status = "interrupted"
        else:
            status = "not run"
        out.append(
            {
                "number": number,
                "cmdlet": step.cmdlet,
                "kind": step.kind.value,
                "status": status,
                "errors": [e.message for e in result.errors] if result else [],
                "warnings": list(result.warnings) if result else [],
                "what_if": list(result.what_if) if result else [],
            }
        )
    return out


def _verdict(verdict: QueueVerdict) -> dict[str, Any]:
    return {
        "flow": verdict.flow.value,
        "reason": verdict.reason,
        "queues": [queue_json(q) for q in verdict.queues],
    }
