"""Render a Plan as a .ps1 script for the Exchange Management Shell (the dry run).

Jinja2 over ps_templates/ with StrictUndefined. Each step is rendered by its own template
(one per cmdlet shape), which names the parameters that shape allows; every value goes
through ``remediate.core.pwsh``. The script wrapper adds the header, the reason of each step and
one ``$cred = Get-Credential ...`` line per distinct credential, before its first use.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache

import jinja2

from remediate.core.errors import RemediateError, TemplateError
from remediate.core.exchange import CredentialState
from remediate.core.plan import CredentialRef, Plan, Step
from remediate.core.playbooks import Action, find
from remediate.core.pwsh import (
    credential_variables,
    ps_comment,
    ps_literal,
    ps_parameter,
    ps_value,
)
from remediate.core.resources import templates_dir

SCRIPT_TEMPLATE = "script.ps1.j2"
_ALWAYS_ALLOWED = frozenset({"Confirm", "WhatIf"})


@lru_cache(maxsize=4)
def environment(directory: str | None = None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory or str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - PowerShell text, not HTML; values go through ps_literal
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates do not change during a run: no stat per step rendered
    )
    env.filters["ps_literal"] = ps_literal
    env.filters["ps_comment"] = ps_comment
    env.filters["ps_value"] = ps_value
    env.globals["command"] = _command
    return env


def _command(step: Step, allowed: Iterable[str], credentials: Mapping[CredentialRef, str]) -> str:
    """``Cmdlet -P1 v1 -P2 v2`` in the step's order, refusing parameters the shape lacks."""
    allowed_set = set(allowed) | _ALWAYS_ALLOWED
    extra = [p.name for p in step.parameters if p.name not in allowed_set]
    if extra:
        raise TemplateError(
            f"template {step.template} does not take parameter(s) {', '.join(extra)} "
            f"of {step.cmdlet}"
        )
    return " ".join([step.cmdlet, *(ps_parameter(p, credentials) for p in step.parameters)])


def render_step(step: Step, credentials: Mapping[CredentialRef, str] | None = None) -> str:
    """One step as its command line (no comments)."""
    try:
        template = environment().get_template(step.template)
        return template.render(step=step, credentials=credentials or {}).strip()
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"ps_templates/{step.template} does not exist") from exc
    except jinja2.TemplateError as exc:
        raise TemplateError(f"ps_templates/{step.template}: {exc}") from exc


def render_script(
    plan: Plan,
    generated_at: datetime | None = None,
    *,
    actions: Sequence[Action] | None = None,
) -> str:
    """The whole plan as a script an admin can read and paste into the Management Shell.

    ``actions``: the playbook's documented actions, listed in the header when steps cite
    them (looked up from the plan's playbook when not given).
    """
    generated_at = generated_at or datetime.now(UTC)
    variables = credential_variables(plan.credentials)
    declared: set[CredentialRef] = set()
    sections = _sections(plan)
    blocks = []
    for number, step in enumerate(plan.steps, start=1):
        cred = step.credential
        new_cred = cred if cred is not None and cred not in declared else None
        if new_cred is not None:
            declared.add(new_cred)
        blocks.append(
            {
                "number": number,
                "step": step,
                "command": render_step(step, variables),
                "credential": new_cred,
                "credential_var": variables.get(new_cred) if new_cred else None,
                "replaces": _replaced(step, variables),
                "section": sections.get(number - 1),
            }
        )
    try:
        return (
            environment()
            .get_template(SCRIPT_TEMPLATE)
            .render(
                plan=plan,
                blocks=blocks,
                actions=_action_lines(plan, actions),
                notes=[
                    line
                    for note in plan.notes
                    for line in textwrap.wrap(
                        ps_comment(note), 92, initial_indent="- ", subsequent_indent="  "
                    )
                ],
                generated_at=_utc(generated_at).strftime("%Y-%m-%d %H:%M:%S UTC"),
            )
        )
    except jinja2.TemplateError as exc:
        raise TemplateError(f"ps_templates/{SCRIPT_TEMPLATE}: {exc}") from exc


def _action_lines(plan: Plan, actions: Sequence[Action] | None) -> list[str]:
    """The cited documented actions, wrapped for comment lines."""
    if actions is None:
        try:
            actions = find(plan.playbook).actions
        except RemediateError:
            actions = ()
    cited = frozenset(step.action for step in plan.steps if step.action)
    return list(_cited_lines(tuple(actions), cited))


@lru_cache(maxsize=64)  # a bulk run renders the same playbook's actions for every connector
def _cited_lines(actions: tuple[Action, ...], cited: frozenset[str]) -> tuple[str, ...]:
    lines: list[str] = []
    for action in actions:
        if action.id in cited:
            lines += textwrap.wrap(
                ps_comment(f"{action.id}: {action.text}"), 92, subsequent_indent="    "
            )
    return tuple(lines)


def _sections(plan: Plan) -> dict[int, str]:
    """Headings by step index: reads before, the changes, the read-back after them."""
    settings = [i for i, s in enumerate(plan.steps) if s.cmdlet.lower().startswith("set-")]
    if not settings:
        return {0: "Read"} if plan.steps else {}
    first = end = settings[0]
    while end + 1 in settings:
        end += 1
    out = {first: "Changes"}
    if first > 0:
        out[0] = "Read current state"
    if end + 1 < len(plan.steps):
        out[end + 1] = "Read back and retry"
    return out


def _replaced(step: Step, variables: Mapping[CredentialRef, str]) -> str | None:
    """``Name=value, ...`` of the values a change replaces, for the comment above it."""
    if not step.is_change or not step.replaces:
        return None
    shown = []
    for p in step.replaces:
        if p.name == "AuthenticationCredential":
            # set / not set / unknown: Exchange never returns the user name
            shown.append(f"{p.name}=({p.value or CredentialState.NOT_SET})")
        else:
            shown.append(f"{p.name}={ps_value(p.value, variables)}")
    return ", ".join(shown)


def _utc(moment: datetime) -> datetime:
    """A naive time is taken as UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
