"""remediate's public Python API: read, plan (with pre-flight), diff, apply, undo, queues.

A small facade over the engine the CLI runs, for scripts and fleet tools (the Ansible
collection ``remediate.exchange`` calls it). Everything listed in ``__all__`` is the stable
surface, versioned by ``API_VERSION`` (semantic: a minor release only adds); every other
module of the package is private.

Passwords are always passed in by the caller: this module never reads the keyring, stdin or a
prompt. Errors are ``remediate.core.errors.RemediateError`` subclasses with a one-line message
for admins (``PreflightError`` when a plan is refused, ``LoginRefused`` for a refused
login, ``RemoteCommandError`` when Exchange refuses a step, ``ConnectorBusy`` when another
run holds the connector).

    with api.connect("http://ex01/PowerShell", user="admin", password=pw, auth="basic") as h:
        plan = api.plan(h, "2016", "Outbound to Relay",
                        mechanism="BasicAuthRequireTLS", username="relay@contoso.com")
        outcome = api.apply(h, plan, relay_password=relay_pw)
        api.undo(h, outcome.backup)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from remediate.core.errors import RemoteCommandError, UsageError
from remediate.core.exchange import (
    PROPERTY_NAMES,
    AuthMechanism,
    ProtocolLoggingLevel,
    QueueInfo,
    SendConnector,
    TlsAuthLevel,
)
from remediate.core.plan import CredentialRef, Plan
from remediate.core.playbooks import Playbook
from remediate.core.queuejson import queue_json
from remediate.remote.connections import AuthMethod, Connection, parse_server
from remediate.remote.session import Session
from remediate.run.queue_watch import MailFlow, QueueVerdict

__all__ = [
    "API_VERSION",
    "Handle",
    "MailFlow",
    "Outcome",
    "Plan",
    "QueueInfo",
    "QueueVerdict",
    "SendConnector",
    "apply",
    "connect",
    "diff",
    "plan",
    "queue_json",
    "queues",
    "read_connectors",
    "retry",
    "undo",
]

API_VERSION = "1.1"

_ATTRIBUTE = {prop: attr for attr, prop in PROPERTY_NAMES.items()}
E = TypeVar("E", bound=Enum)


@dataclass
class Handle:
    """An open session with one Exchange endpoint (a context manager: closed on exit).

    ``warnings`` collects what the engine would print (Exchange's warnings, Basic over
    http); nothing is written to stdout or stderr. ``environ`` decides where backups, the
    audit log and locks go (``XDG_STATE_HOME``; None: the process environment).
    """

    connection: Connection
    session: Session = field(repr=False)
    environ: Mapping[str, str] | None = field(default=None, repr=False)
    warnings: list[str] = field(default_factory=list, repr=False)

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()


@dataclass(frozen=True)
class Outcome:
    """What ``apply`` or ``undo`` did: ``changed`` is true only when Exchange changed
    something (not with -WhatIf); ``backup`` is the file ``undo`` takes (None when nothing
    was changed); ``summary`` says step by step what ran."""

    changed: bool
    before: SendConnector
    after: SendConnector
    backup: Path | None
    audit: Path | None
    summary: str
    notes: tuple[str, ...] = ()


def connect(
    target: str | Connection,
    *,
    user: str | None = None,
    password: str | None = None,
    auth: str | AuthMethod | None = None,
    verify: bool = True,
    ca_file: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
    warn: Callable[[str], None] | None = None,
) -> Handle:
    """Open a session with the endpoint ``target`` (a URL such as
    ``https://ex01.contoso.com/PowerShell`` or a ``Connection``).

    ``user`` and ``auth`` override the Connection's; ``password`` is the admin password
    (None: a Kerberos ticket). ``warn`` is also called with each warning. ConnectionFailed
    (LoginRefused for a refused login) when the session cannot be opened.
    """
    connection = target if isinstance(target, Connection) else parse_server(target)
    changes: dict[str, Any] = {}
    if user is not None:
        changes["username"] = user
    if auth is not None:
        changes["auth"] = _enum(AuthMethod, auth, "auth")
    if not isinstance(target, Connection):
        changes["verify"] = verify
        changes["ca_file"] = Path(ca_file) if ca_file else None
    connection = dataclasses.replace(connection, **changes)
    warnings: list[str] = []

    def collect(text: str) -> None:
        warnings.append(text)
        if warn is not None:
            warn(text)

    session = Session(connection, password, collect)
    session.open()
    return Handle(connection, session, environ, warnings)


def read_connectors(handle: Handle, name: str | None = None) -> list[SendConnector]:
    """The Send connectors (or the one named: RemoteCommandError when there is none)."""
    connectors = handle.session.get_connectors(name)
    if name is not None and not connectors:
        raise RemoteCommandError(f"Send connector '{name}' not found")
    return connectors


def plan(
    handle: Handle,
    playbook: str | Playbook,
    connector: str,
    *,
    what_if: bool = False,
    mechanism: str | AuthMechanism | None = None,
    username: str | None = None,
    reenter_credential: bool = False,
    smart_hosts: Sequence[str] | str = (),
    port: int | None = None,
    require_tls: bool | None = None,
    tls_auth_level: str | TlsAuthLevel | None = None,
    tls_domain: str | None = None,
    enable: bool | None = None,
    protocol_logging: str | ProtocolLoggingLevel | None = None,
) -> Plan:
    """The plan for ``connector`` from its current state, pre-flight included: only the
    settings that differ are sent (an empty ``plan.changes`` means nothing to do).

    A credential cannot be compared (Exchange returns only whether one is set, never its
    user name): with one already set it is left as it is unless ``reenter_credential``.
    PreflightError when Exchange would refuse the change, UsageError for a bad option.
    """
    from remediate.core.planner import FixOptions, build_plan

    options = FixOptions(
        connector=connector,
        mechanism=_enum(AuthMechanism, mechanism, "mechanism"),
        username=username,
        reenter_credential=reenter_credential,
        smart_hosts=(smart_hosts,) if isinstance(smart_hosts, str) else tuple(smart_hosts),
        port=port,
        require_tls=require_tls,
        tls_auth_level=_enum(TlsAuthLevel, tls_auth_level, "tls_auth_level"),
        tls_domain=tls_domain,
        enable=enable,
        protocol_logging=_enum(ProtocolLoggingLevel, protocol_logging, "protocol_logging"),
    )
    current = read_connectors(handle, connector)[0]
    return build_plan(_playbook(playbook), options, current=current, what_if=what_if)


def diff(plan: Plan, current: SendConnector) -> list[tuple[str, Any, Any]]:
    """(Exchange property, before, after) for every setting ``plan`` changes on
    ``current``. A credential that is only re-entered shows as ``set`` -> ``re-entered``:
    it cannot be compared."""
    from remediate.core import preflight
    from remediate.run.report import differences

    after = preflight.check(plan.changes, current).after or current
    rows = differences(current, after)
    if plan.credentials and not any(name == "AuthenticationCredential" for name, _, _ in rows):
        rows.append(("AuthenticationCredential", current.credential.value, "re-entered"))
    return rows


def apply(
    handle: Handle,
    plan: Plan,
    *,
    relay_password: str | None = None,
) -> Outcome:
    """Apply ``plan`` through the one apply pipeline: the connector's lock, a re-read (a
    plan made from a state that has changed since is refused), backup, the steps, the
    audit log, the read-back. ``relay_password`` is needed when the plan sends a credential.

    RemoteCommandError when a step fails (its ``outcome`` attribute, when set, says what
    was applied and where the backup is).
    """
    from remediate.run.locks import ConnectorLocks, read_locked

    with ConnectorLocks(handle.connection, handle.environ, [plan.connector]) as locks:
        current = read_locked(locks, lambda name: read_connectors(handle, name)[0], plan.connector)
        _check_still_current(plan, current)
        return _run(handle, plan, current, _relay_source(relay_password))


def undo(
    handle: Handle,
    backup_path: Path | str,
    *,
    what_if: bool = False,
    relay_user: str | None = None,
    relay_password: str | None = None,
) -> Outcome:
    """Restore what the apply that wrote ``backup_path`` changed, from the connector's
    current state (a setting already back is not sent). The credential is never restored
    (no backup holds a password); ``relay_user``/``relay_password`` go with an old
    mechanism Exchange accepts only with a credential."""
    from remediate.core.planner import relay_credential, undo_plan
    from remediate.run.backup import load_backup
    from remediate.run.locks import ConnectorLocks, read_locked

    saved = load_backup(backup_path)
    if handle.connection.url.rstrip("/").lower() != saved.url.rstrip("/").lower():
        raise UsageError(
            f"this backup is of '{saved.connector.name}' at {saved.url}, "
            f"not {handle.connection.url}"
        )
    name = saved.connector.name
    with ConnectorLocks(handle.connection, handle.environ, [name]) as locks:
        current = read_locked(locks, lambda n: read_connectors(handle, n)[0], name)
        credential = relay_credential(relay_user) if relay_user and relay_password else None
        restore = undo_plan(
            saved.connector, saved.applied, what_if=what_if, current=current, credential=credential
        )
        return _run(handle, restore, current, _relay_source(relay_password))


def queues(handle: Handle, connector: str | SendConnector) -> list[QueueInfo]:
    """The connector's smart-host queues on each of its source transport servers."""
    found = _connector(handle, connector)
    return handle.session.get_queues(found)


def retry(handle: Handle, connector: str | SendConnector, wait: float) -> QueueVerdict:
    """Retry-Queue every queue of the connector holding messages, then watch them for up
    to ``wait`` seconds (retrying while they still fail): the verdict says whether mail
    flows, still fails, or is not known."""
    from remediate.run.queue_watch import watch

    if wait < 0:
        raise UsageError("wait must be 0 or more seconds")
    found = _connector(handle, connector)
    before = handle.session.get_queues(found)
    for queue in before:
        if queue.message_count > 0:
            handle.session.retry_queue(queue.identity)
    return watch(handle.session, found, before, wait)


# --- private -------------------------------------------------------------------------------


def _run(
    handle: Handle,
    plan: Plan,
    current: SendConnector,
    credential: Callable[[CredentialRef], str],
) -> Outcome:
    from remediate.run.execute import apply_plan, describe

    if not plan.changes:
        return Outcome(False, current, current, None, None, "Nothing to change.", plan.notes)
    applied = apply_plan(
        handle.session, plan, current, handle.connection, credential, environ=handle.environ
    )
    outcome = Outcome(
        changed=bool(applied.result.changed_steps) and not plan.what_if,
        before=current,
        after=applied.after,
        backup=applied.backup.path if applied.backup is not None else None,
        audit=applied.audit_path,
        summary=applied.result.summary(),
        notes=plan.notes,
    )
    failed = applied.result.failed_step
    if failed is not None:
        message = failed.errors[0].message if failed.errors else "failed without an error record"
        error = RemoteCommandError(
            f"{describe(failed.step)} failed on '{plan.connector}': {message}",
            hint=f"backup: {outcome.backup}" if outcome.backup else None,
        )
        error.outcome = outcome  # type: ignore[attr-defined]
        raise error
    return outcome


def _check_still_current(plan: Plan, current: SendConnector) -> None:
    """Refuse a plan whose replaced values are no longer the connector's, then pre-flight
    it again on the state read under the lock."""
    from remediate.core import preflight

    for step in plan.changes:
        for old in step.replaces or ():
            attribute = _ATTRIBUTE.get(old.name)
            if attribute is not None and getattr(current, attribute) != old.value:
                raise UsageError(
                    f"'{plan.connector}' changed since the plan was made ({old.name}); "
                    "nothing was sent",
                    hint="make the plan again",
                )
    preflight.check(plan.changes, current)


def _relay_source(password: str | None) -> Callable[[CredentialRef], str]:
    from remediate.core import preflight

    if password is not None:
        preflight.check_password(password)

    def serve(ref: CredentialRef) -> str:
        if password is None:
            raise UsageError(
                f"a password for the relay account {ref.username} is needed: "
                "pass relay_password; nothing was sent"
            )
        return password

    return serve


def _connector(handle: Handle, connector: str | SendConnector) -> SendConnector:
    if isinstance(connector, SendConnector):
        return connector
    return read_connectors(handle, connector)[0]


def _playbook(playbook: str | Playbook) -> Playbook:
    from remediate.core.playbooks import find

    return playbook if isinstance(playbook, Playbook) else find(str(playbook))


def _enum(kind: type[E], value: str | E | None, option: str) -> E | None:
    if value is None or isinstance(value, kind):
        return value
    parse = getattr(kind, "parse", None)
    try:
        parsed = parse(str(value)) if parse is not None else kind(str(value).lower())
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None
    return parsed
