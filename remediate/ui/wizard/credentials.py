"""The relay account's credential in the wizard: the user name, its password from the
keyring, the demo or typed twice, and whether the smart host refused it. Shared by the
stages (``flow``), the 2016 fix (``flow_2016``) and the generic questions (``questions``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remediate.core.errors import SecretStoreError, UsageError
from remediate.core.last_error import Cause, parse_last_error
from remediate.core.plan import RELAY_SERVICE
from remediate.core.planner import relay_credential
from remediate.core.preflight import check_password, check_username
from remediate.remote.secrets import get_secret, keyring_usable, set_secret
from remediate.run.audit import last_set_credential
from remediate.run.queue_watch import MailFlow
from remediate.ui.wizard.prompter import Choice

if TYPE_CHECKING:
    from remediate.run.queue_watch import QueueVerdict
    from remediate.ui.wizard.context import WizardContext

PASSWORD_TRIES = 3
CREDENTIAL_REFUSALS = (530, 535, 454)  # AUTH required / refused / could not be set up


def keyring_secret(ctx: WizardContext, service: str, key: str) -> tuple[bool, str | None]:
    """(keyring usable, stored secret). A keyring that is missing, locked or refuses is
    not an error here: the wizard asks instead and does not offer to save."""

    if not keyring_usable(ctx.env.environ):
        return False, None
    try:
        return True, get_secret(service, key, ctx.env.environ)
    except SecretStoreError as exc:
        ctx.say(f"The keyring cannot be used ({exc}); passwords are asked for, not saved.")
        return False, None


def credential_refused(verdict: QueueVerdict) -> bool:
    """The smart host refused or required the login (530/535/454) on a queue still failing."""

    if verdict.flow is not MailFlow.FAILS:
        return False
    for queue in verdict.queues:
        found = parse_last_error(queue.last_error)
        if found is not None and (
            found.cause in (Cause.PASSWORD_REJECTED, Cause.CREDENTIAL)
            or found.smtp_code in CREDENTIAL_REFUSALS
            or any(f"{code} " in found.reply for code in CREDENTIAL_REFUSALS)
        ):
            return True
    return False


def relay_account(ctx: WizardContext) -> str:
    """User name (prefilled from the event, the name remediate last set on this connector
    (its audit log: Exchange never returns it), or the demo's), password from the keyring,
    the demo's lab account, or typed twice without echo; offer to save it."""

    connector = ctx.connector
    assert connector is not None
    lab = ctx.options.lab_relay
    url = ctx.session.connection.url if ctx.session is not None else ""
    last = last_set_credential(url, connector.name, ctx.env.environ) if url else None
    default = (
        ctx.prefill.get("username") or (last.username if last else "") or (lab[0] if lab else "")
    )
    question = "Relay account user name:"
    if last is not None and default == last.username:
        question = f"Relay account user name (last set: {last.label()}):"
    username = check_username(ctx.prompter.text("username", question, default))
    if not username:
        raise UsageError("the relay account's user name is empty")
    keyring, stored = keyring_secret(ctx, RELAY_SERVICE, username)
    choices = []
    if stored:
        choices.append(Choice("keyring", "Use the password saved in the keyring"))
    if lab and lab[0] == username:
        choices.append(Choice("lab", "Use the lab's relay password (demo only)"))
    choices.append(Choice("type", "Type the password"))
    source = ctx.prompter.select(
        "password_source", f"Password for {username}:", choices, choices[0].value
    )
    if source == "keyring":
        password = stored
    elif source == "lab":
        password = lab[1] if lab else None
    else:
        password = typed_password(ctx, username)
        if keyring:
            if ctx.prompter.confirm(
                "save_password", "Save this password in the keyring?", default=False
            ):
                save_password(ctx, username, password)
        else:
            ctx.say("No usable keyring on this machine: the password is not saved.")
    assert password is not None
    ctx.credentials[relay_credential(username)] = password
    ctx.notes["relay_user"] = username
    return username


def typed_password(ctx: WizardContext, username: str) -> str:
    for _ in range(PASSWORD_TRIES):
        first = ctx.prompter.password("relay_password", f"Password for {username}:")
        second = ctx.prompter.password("relay_password_again", "The same password again:")
        if first != second:
            ctx.say("The two passwords differ; type them again.")
            continue
        check_password(first)
        return first
    raise UsageError(f"the passwords for {username} did not match {PASSWORD_TRIES} times")


def save_password(ctx: WizardContext, username: str, password: str) -> None:
    try:
        set_secret(RELAY_SERVICE, username, password, ctx.env.environ)
    except SecretStoreError as exc:
        ctx.say(f"Not saved: {exc}. The password is used for this run only.")
        return
    ctx.say(f"Saved in the keyring ({RELAY_SERVICE} / {username}).")
