"""The ``--json`` document of ``apply`` and ``undo`` (schema ``change-run``): the plan as
data, each step's outcome, the connector before and after, where the backup, undo script and
audit log went, and the queues after Retry-Queue. Never a secret: a credential appears as its
user name, its old value as set / not set / unknown."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from remediate.core.queuejson import queue_json

if TYPE_CHECKING:
    from remediate.core.exchange import SendConnector
    from remediate.core.plan import Plan
    from remediate.run.execute import Applied
    from remediate.run.queue_watch import QueueVerdict


def change_run_json(
    command: str,
    endpoint: str,
    plan: Plan,
    before: SendConnector,
    applied: Applied | None,
    verdict: QueueVerdict | None = None,
) -> dict[str, Any]:
    """``applied`` None: nothing to change (the connector already has the settings)."""
    from remediate.run.backup import plan_to_json

    if applied is None:
        result = "no change"
    elif not applied.result.ok:
        result = "failed"
    else:
        result = "what-if" if plan.what_if else "applied"
    backup = applied.backup if applied is not None else None
    return {
        "command": command,
        "endpoint": endpoint,
        "connector": plan.connector,
        "result": result,
        "ok": applied is None or applied.result.ok,
        "plan": plan_to_json(plan),
        "steps": _steps(plan, applied),
        "before": before.to_json(),
        "after": applied.after.to_json() if applied is not None else before.to_json(),
        "backup": str(backup.path) if backup is not None else None,
        "undo_script": str(backup.script) if backup is not None else None,
        "audit_log": str(applied.audit_path) if applied and applied.audit_path else None,
        "queues": None if verdict is None else _verdict(verdict),
    }


def _steps(plan: Plan, applied: Applied | None) -> list[dict[str, Any]]:
    results = {} if applied is None else {id(r.step): r for r in applied.result.results}
    interrupted = None if applied is None else applied.result.interrupted
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
