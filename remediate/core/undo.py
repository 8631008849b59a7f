"""Undo plans: the settings a backup holds, put back (the credential can only be re-entered),
and whether an undo still has anything to do on a connector."""

from __future__ import annotations

from remediate.core import preflight
from remediate.core.errors import PreflightError
from remediate.core.exchange import (
    ATTRIBUTE_NAMES,
    AuthMechanism,
    CredentialState,
    SendConnector,
)
from remediate.core.plan import (
    SWITCH,
    CredentialRef,
    Parameter,
    ParamValue,
    Plan,
    Step,
    StepKind,
)
from remediate.core.playbooks import (
    TEMPLATE_SUFFIX,
)


def already_restored(undo: Plan, current: SendConnector) -> bool:
    """Every setting the undo would send is already the connector's value."""
    for step in undo.changes:
        for p in step.parameters:
            attr = ATTRIBUTE_NAMES.get(p.name)
            if attr is not None and attr != "name" and getattr(current, attr) != p.value:
                return False
    return True


def undo_plan(
    before: SendConnector,
    applied: Plan,
    *,
    what_if: bool = False,
    current: SendConnector | None = None,
    credential: CredentialRef | None = None,
) -> Plan:
    """A plan restoring ``before`` for every setting ``applied`` changed.

    Planned from ``current`` when the connector was read again (else from ``before`` with
    ``applied`` replayed on it), a value the connector already has is not sent, so no step
    is a no-op or repeats another. ``credential`` (the wizard asks for it) goes with old
    values Exchange accepts only with one (BasicAuth* on a connector whose credential is gone).

    Set-SendConnector steps are undone in reverse order. A password is never read back, so a
    credential cannot be restored: the connector keeps the one applied (a note says so),
    except when undo switches the connector back to DNS routing, which makes Exchange delete
    it, as it was before. Old values Exchange would refuse (a connector that was already
    broken) are not restored; a note says so. Retry-Queue steps have nothing to undo.
    """
    notes: list[str] = []
    credential_notes: list[str] = []
    steps: list[Step] = []
    tail = (Parameter("Confirm", False),) + ((Parameter("WhatIf", SWITCH),) if what_if else ())
    state = current or preflight.check(applied.changes, before).after
    assert state is not None  # ``before`` is a whole connector, so the result is known
    for step in reversed(applied.changes):
        if step.cmdlet.lower() != "set-sendconnector":
            continue
        restore: dict[str, ParamValue] = {}
        for p in step.parameters:
            attr = ATTRIBUTE_NAMES.get(p.name)
            if attr is None:
                continue
            if attr == "credential":
                if credential is None:
                    credential_notes.append(_credential_note(before, p.value))
                continue
            if getattr(state, attr) != getattr(before, attr):
                restore[p.name] = getattr(before, attr)
        mechanism = restore.get("SmartHostAuthMechanism")
        if credential is not None and isinstance(mechanism, AuthMechanism):
            if mechanism.needs_credential:
                restore["AuthenticationCredential"] = credential
        if restore.get("DNSRoutingEnabled") is True:
            # Exchange refuses SmartHosts here and wipes them (and the credential) itself.
            restore.pop("SmartHosts", None)
            restore["SmartHostAuthMechanism"] = AuthMechanism.NONE
            notes.append(
                "switching back to DNS routing makes Exchange drop the smart hosts, as the "
                "connector had none before"
            )
        if not restore:
            continue
        undo, checked, refused = _restorable(applied.connector, step, restore, state, tail)
        notes += [f"not restored, Exchange would refuse the old values: {r}" for r in refused]
        if undo is None or checked is None or checked.after is None:
            continue
        state = checked.after
        notes += checked.notes
        steps.append(undo)
    notes += credential_notes
    if steps:
        steps.append(
            Step(
                cmdlet="Get-SendConnector",
                parameters=(Parameter("Identity", applied.connector),),
                kind=StepKind.READ,
                reason="Read the connector back after the undo.",
                template="get_send_connector" + TEMPLATE_SUFFIX,
            )
        )
    else:
        notes.append("nothing to undo: the applied plan changed no restorable setting")
    return Plan(
        playbook=applied.playbook,
        event_id=applied.event_id,
        connector=applied.connector,
        steps=tuple(steps),
        what_if=what_if,
        title=f"Undo: {applied.title}",
        notes=tuple(dict.fromkeys(notes)),
    )


def _restorable(
    connector: str,
    step: Step,
    restore: dict[str, ParamValue],
    state: SendConnector,
    tail: tuple[Parameter, ...],
) -> tuple[Step | None, preflight.Checked | None, list[PreflightError]]:
    """The undo step for ``step``: all old values when Exchange would take them, else as
    many as it would take one by one (a connector broken before cannot be made broken again);
    with the refusals for the notes."""

    def undo_step(values: dict[str, ParamValue]) -> Step:
        return Step(
            cmdlet="Set-SendConnector",
            parameters=(
                Parameter("Identity", connector),
                *(Parameter(n, v) for n, v in values.items()),
                *tail,
            ),
            kind=StepKind.CHANGE,
            reason=f"Undo: restore the values before '{step.reason}'",
            template=step.template,
            action=step.action,
            replaces=tuple(Parameter(n, getattr(state, ATTRIBUTE_NAMES[n])) for n in values),
        )

    try:
        whole = undo_step(restore)
        return whole, preflight.check([whole], state), []
    except PreflightError as first:
        refused = [first]
    kept: dict[str, ParamValue] = {}
    for name, value in restore.items():
        try:
            preflight.check([undo_step({**kept, name: value})], state)
        except PreflightError:
            continue
        kept[name] = value
    if not kept:
        return None, None, refused
    partial = undo_step(kept)
    return partial, preflight.check([partial], state), refused


def _credential_note(before: SendConnector, value: ParamValue) -> str:
    user = value.username if isinstance(value, CredentialRef) else value
    if before.credential is CredentialState.NOT_SET:
        return f"the connector had no credential before; undo leaves the one for {user!r} in place"
    return (
        "the credential cannot be restored (Exchange never returns its user name or "
        f"password): the connector keeps the one for {user!r}; to go back to the old "
        "account, enter it again with --username and --reenter-credential"
    )
