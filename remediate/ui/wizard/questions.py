"""The fix questions of a playbook that names no flow of its own: its declared inputs, asked
in order (as copier asks a template's questions). ``when`` decides whether one is asked, the
default is the event's value when the event names a field so, else the playbook's default;
an answer the input's type refuses is explained and asked again (TRIES in all).

An empty answer (or No to a flag) leaves that setting as it is.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from remediate.core.errors import UsageError
from remediate.core.exchange import AuthMechanism, ProtocolLoggingLevel, TlsAuthLevel
from remediate.core.options import input_dest, parse_input
from remediate.ui.fix_arguments import fix_options_from_args
from remediate.ui.wizard.credentials import relay_account
from remediate.ui.wizard.prompter import Choice

if TYPE_CHECKING:
    from remediate.core.options import FixOptions
    from remediate.core.playbooks import Input
    from remediate.ui.wizard.context import WizardContext

TRIES = 3
_ENUMS: dict[str, tuple[str, ...]] = {
    "mechanism": tuple(m.value for m in AuthMechanism),
    "tls_auth_level": tuple(t.value for t in TlsAuthLevel),
    "protocol_logging": tuple(p.value for p in ProtocolLoggingLevel),
}
_YES_NO = ("flag", "bool")


def answer_key(item: Input) -> tuple[str, type]:
    """The answers-file key of an input: its name, true/false for flags."""
    return item.name, bool if item.type in _YES_NO else str


def choose_fix(ctx: WizardContext) -> FixOptions:
    assert ctx.playbook is not None and ctx.connector is not None
    answers: dict[str, Any] = {}
    for item in ctx.playbook.inputs:
        if item.when is not None and not item.when.holds(answers):
            continue
        if item.name == "username":  # the relay account: its password too, never printed
            answers[item.name] = relay_account(ctx)
            continue
        answers[item.name] = _ask(ctx, item)
    return options_from_answers(ctx.connector.name, ctx.playbook.inputs, answers)


def options_from_answers(
    connector: str, inputs: tuple[Input, ...], answers: dict[str, Any]
) -> FixOptions:
    """FixOptions from the answers, through the same conversion as the command line."""
    values: dict[str, Any] = {}
    for item in inputs:
        value = answers.get(item.name)
        if value is None or value == "" or (value is False and item.type == "flag"):
            continue  # left as it is
        values[item.name if item.builtin else input_dest(item.name)] = value
    if "smart_hosts" in values:
        values["smart_hosts"] = [h.strip() for h in values["smart_hosts"].split(",") if h.strip()]
    return fix_options_from_args(argparse.Namespace(**values), connector=connector)


def _ask(ctx: WizardContext, item: Input) -> Any:
    """One answer, checked by the input's type (asked again when refused)."""
    for attempt in range(1, TRIES + 1):
        answer = _question(ctx, item)
        if answer in (None, "") or item.builtin or item.type in _YES_NO:
            return answer
        try:
            parse_input(item, answer)
        except UsageError as bad:
            if attempt == TRIES:
                raise
            ctx.say(f"{bad.message} (try {attempt + 1} of {TRIES}).")
            continue
        return answer
    raise AssertionError("unreachable")  # the loop returns or raises


def _question(ctx: WizardContext, item: Input) -> Any:
    prefilled = ctx.prefill.get(item.name)
    default = prefilled if prefilled is not None else item.default
    if item.type in _YES_NO:
        return ctx.prompter.confirm(item.name, item.prompt, default=bool(default))
    choices = item.choices or _ENUMS.get(item.type, ())
    if choices:
        options = [Choice(c, c) for c in choices]
        return ctx.prompter.select(item.name, item.prompt, options, _text(default) or None)
    if isinstance(default, list | tuple):
        default = ", ".join(default)
    return ctx.prompter.text(item.name, item.prompt, _text(default)).strip()


def _text(value: Any) -> str:
    return "" if value is None else str(value)
