"""The guided wizard: shared stages in ``flow``, the diagnosis from the playbook's checks
(``remediate.diagnose.playbook_checks``), and the fix questions.

Which questions: a playbook's YAML may name a flow module of its own (``flow: flow_2016``,
the module ``remediate/ui/wizard/flow_2016.py``), for events whose questions depend on what was
found (2016 asks for a mechanism by what the smart host offers). Without one the wizard asks
the playbook's declared inputs (``remediate.ui.wizard.questions``: question text, ``when``,
choices, default), so a playbook written in YAML alone is guided too.

A flow module defines (see ``flow_2016`` for the reference implementation):

    def choose_fix(ctx: flow.WizardContext) -> options.FixOptions
        ask through ``ctx.prompter`` only (every question has a stable key, which is also
        its answers-file key), using what the checks kept in ``ctx.notes``; put any relay
        password in ``ctx.credentials`` (in memory, keyed by the CredentialRef the plan will
        use) and never print it.
    ANSWER_KEYS: dict[str, type]   (optional)
        answers-file keys this flow asks beyond ``remediate.core.answers.KEYS`` (str or bool).
    def remedies(ctx, verdict) / remedy(ctx, answer)   (optional)
        what to offer when the queue still fails after the apply.

``flow.run_wizard`` does the rest for every event: intake, connection, connector choice,
the checks, preview (the rendered plan), apply with backup, before/after, verify
(Retry-Queue and watching the queue), undo offer and summary.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from remediate.ui.wizard.questions import answer_key

if TYPE_CHECKING:
    from remediate.core.playbooks import Playbook

PACKAGE = __name__  # this package, wherever it lives
QUESTIONS = "questions"  # the flow of a playbook that names none


def flow_for(playbook: Playbook) -> ModuleType:
    """The module that asks ``playbook``'s fix questions."""
    return importlib.import_module(f"{PACKAGE}.{playbook.flow or QUESTIONS}")


def answer_keys() -> dict[str, type]:
    """Extra answers-file keys the flows declare (optional ``ANSWER_KEYS``), and one per
    input of the playbooks without a flow of their own."""
    # lazy: ``fix --answers`` asks for the keys before the wizard (and the planner) loads
    from remediate.core.playbooks import load_all

    keys: dict[str, type] = {}
    for playbook in load_all():
        keys.update(getattr(flow_for(playbook), "ANSWER_KEYS", {}))
        if playbook.flow is None:
            keys.update(answer_key(item) for item in playbook.inputs)
    return keys
