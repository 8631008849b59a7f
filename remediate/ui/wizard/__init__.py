"""The guided wizard: shared stages in ``flow``, event-specific stages in ``flow_<event>``.

Registry API (for the engineer adding an event): ``FLOWS`` maps a playbook id to the module
implementing that event's stages. To add event 2002, write ``remediate/ui/wizard/flow_2002.py``
and add ONE line here: ``"send-connection-error": "remediate.ui.wizard.flow_2002",``.

A flow module defines (see ``flow_2016`` for the reference implementation):

    def diagnose(ctx: flow.WizardContext) -> list[diagnosis.Finding]
        look at ``ctx.connector`` (read from Exchange), ``ctx.queues`` and ``ctx.event``
        (a parsed EventRecord or None, with ``ctx.prefill`` from remediate.diagnose.intake), probe
        what it needs; ``flow`` shows the returned findings as a checklist (the flow may
        print progress lines with ``ctx.say``). Keep results for choose_fix in ``ctx.notes``.
    def choose_fix(ctx: flow.WizardContext) -> planner.FixOptions
        ask through ``ctx.prompter`` only (every question has a stable key, which is also
        its answers-file key); put any relay password in ``ctx.credentials`` (in memory,
        keyed by the CredentialRef the plan will use) and never print it.
    ANSWER_KEYS: dict[str, type]   (optional)
        answers-file keys this flow asks beyond ``remediate.core.answers.KEYS`` (str or bool).

``flow.run_wizard`` does the rest for every event: intake, connection, connector choice,
preview (the rendered plan), apply with backup, before/after, verify (Retry-Queue and
watching the queue), undo offer and summary.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from remediate.core.errors import UsageError

FLOWS: dict[str, str] = {
    "smarthost-auth-credential": "remediate.ui.wizard.flow_2016",
    "send-connection-error": "remediate.ui.wizard.flow_2002",
}


def flow_for(playbook_id: str) -> ModuleType:
    """The flow module for a playbook id; UsageError when the wizard does not cover it."""
    module_name = FLOWS.get(playbook_id)
    if module_name is None:
        covered = ", ".join(sorted(FLOWS))
        raise UsageError(
            f"the guided fix does not cover playbook '{playbook_id}' yet (covered: {covered})",
            hint="use 'remediate plan' and 'remediate apply' for it",
        )
    return importlib.import_module(module_name)


def answer_keys() -> dict[str, type]:
    """Extra answers-file keys the registered flows declare (optional ``ANSWER_KEYS``)."""
    keys: dict[str, type] = {}
    for playbook_id in FLOWS:
        keys.update(getattr(flow_for(playbook_id), "ANSWER_KEYS", {}))
    return keys
