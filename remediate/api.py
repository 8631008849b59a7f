"""remediate's public Python API: read, plan (with pre-flight), diff, apply, undo, queues.

A small facade over the engine the CLI runs, for scripts and fleet tools (the Ansible
collection ``remediate.exchange`` calls it). Everything listed in ``__all__`` is the stable
surface, versioned by ``API_VERSION`` (semantic: a minor release only adds); every other
module of the package is private.

Passwords are always passed in by the caller: this module never reads the keyring, stdin or a
prompt. Errors are ``remediate.core.errors.RemediateError`` subclasses with a one-line message
for admins (``PreflightError`` when a plan is refused, ``LoginRefused`` for a refused
login, ``StepFailed`` (a ``RemoteCommandError``) when Exchange refuses a step of a plan,
``RemoteCommandError`` for a refused read, ``ConnectorBusy`` when another run holds the
connector). Since 1.1 the CLI's apply, undo, show and plan run through these functions.

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
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, Unpack

from remediate.core import preflight
from remediate.core.errors import RemoteCommandError, UsageError
from remediate.core.exchange import (
    ATTRIBUTE_NAMES,
    AuthMechanism,
    ProtocolLoggingLevel,
    QueueInfo,
    SendConnector,
    TlsAuthLevel,
)
from remediate.core.options import FixOptions, parse_input
from remediate.core.plan import CredentialRef, ParamValue, Plan
from remediate.core.planner import build_plan, relay_credential
from remediate.core.playbooks import Playbook, find
from remediate.core.queuejson import queue_json
from remediate.core.status import ExitStatus
from remediate.core.undo import undo_plan
from remediate.remote.connections import AuthMethod, Connection, parse_server
from remediate.remote.hosting import ShellHost, start_hosts
from remediate.remote.session import Session
from remediate.run.backup import load_backup
from remediate.run.execute import StepCallback
from remediate.run.locks import ConnectorLocks
from remediate.run.pipeline import Outcome, Ready, StepFailed, change, watch_queues
from remediate.run.queue_watch import MailFlow, QueueVerdict, watch
from remediate.run.report import differences

__all__ = [
    "API_VERSION",
    "ExitStatus",
    "FixSettings",
    "Handle",
    "MailFlow",
    "Outcome",
    "Plan",
    "QueueInfo",
    "QueueVerdict",
    "SendConnector",
    "StepFailed",
    "apply",
    "connect",
    "diff",
    "fix",
    "plan",
    "queue_json",
    "queues",
    "read_connectors",
    "retry",
    "start_hosts",
    "undo",
    "verify",
]

if TYPE_CHECKING:
    from remediate.core.options import FixOptions

API_VERSION = "1.2"

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
    locks: ConnectorLocks | None = field(default=None, repr=False)  # connect(lock=...)

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.session.close()
        finally:
            if self.locks is not None:
                self.locks.release()


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
    lock: Sequence[str] = (),
    runspaces: int = 1,
    host: ShellHost | None = None,
) -> Handle:
    """Open a session with the endpoint ``target`` (a URL such as
    ``https://ex01.contoso.com/PowerShell`` or a ``Connection``).

    ``user`` and ``auth`` override the Connection's; ``password`` is the admin password
    (None: a Kerberos ticket). ``warn`` is also called with each warning. ConnectionFailed
    (LoginRefused for a refused login) when the session cannot be opened.

    ``lock`` (1.1): connectors locked before the session opens and held until the handle
    closes (ConnectorBusy, with nothing sent, when another run holds one); without it,
    ``apply`` and ``undo`` hold the lock from their read to their read-back. ``runspaces``
    (1.1): pipelines the session's one shell runs at once (bulk's ``--in-flight``).
    ``host`` (1.2): run the shell in that worker process (``remote.hosting.start_hosts``;
    bulk's ``--processes``) instead of this one.
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

    locks = ConnectorLocks(connection, environ, lock) if lock else None
    if locks is not None:
        locks.acquire(lock)
    session = Session(connection, password, collect, runspaces=runspaces, host=host)
    try:
        session.open()
    except BaseException:
        session.close()
        if locks is not None:
            locks.release()
        raise
    return Handle(connection, session, environ, warnings, locks)


def read_connectors(handle: Handle, name: str | None = None) -> list[SendConnector]:
    """The Send connectors (or the one named: RemoteCommandError when there is none)."""
    connectors = handle.session.get_connectors(name)
    if name is not None and not connectors:
        raise RemoteCommandError(f"Send connector '{name}' not found")
    return connectors


class FixSettings(TypedDict, total=False):
    """The settings ``plan`` and ``fix`` take (None or absent: leave as it is)."""

    mechanism: str | AuthMechanism | None
    username: str | None
    reenter_credential: bool
    smart_hosts: Sequence[str] | str
    port: int | None
    require_tls: bool | None
    tls_auth_level: str | TlsAuthLevel | None
    tls_domain: str | None
    enable: bool | None
    protocol_logging: str | ProtocolLoggingLevel | None
    # (1.1) a playbook's own inputs (its YAML ``inputs:``), by name: {"fqdn": "mail.contoso.com"}
    inputs: Mapping[str, ParamValue]


def plan(
    handle: Handle | None,
    playbook: str | Playbook,
    connector: str,
    *,
    what_if: bool = False,
    **settings: Unpack[FixSettings],
) -> Plan:
    """The plan for ``connector`` from its current state, pre-flight included: only the
    settings that differ are sent (an empty ``plan.changes`` means nothing to do).
    ``handle`` None (1.1): planned offline, the connector not read, so every setting given
    is in the plan (``remediate plan``).

    A credential cannot be compared (Exchange returns only whether one is set, never its
    user name): with one already set it is left as it is unless ``reenter_credential``.
    PreflightError when Exchange would refuse the change, UsageError for a bad option.
    """

    chosen = _playbook(playbook)
    options = _fix_options(connector, settings, chosen)
    current = read_connectors(handle, connector)[0] if handle is not None else None
    return build_plan(chosen, options, current=current, what_if=what_if)


def fix(
    handle: Handle,
    playbook: str | Playbook,
    connector: str,
    *,
    what_if: bool = False,
    relay_password: str | None = None,
    ready: Ready | None = None,
    on_step: StepCallback | None = None,
    **settings: Unpack[FixSettings],
) -> Outcome:
    """(1.1) ``plan`` and ``apply`` in one pass of the pipeline: the plan is made from the
    connector as read under its lock, so it is read once (``remediate apply``). An
    outcome with nothing to change when the connector already has the settings."""

    chosen = _playbook(playbook)
    options = _fix_options(connector, settings, chosen)

    def planned(current: SendConnector) -> Plan:
        return build_plan(chosen, options, current=current, what_if=what_if)

    return _run(handle, connector, planned, relay_password, ready, on_step)


def diff(plan: Plan, current: SendConnector) -> list[tuple[str, Any, Any]]:
    """(Exchange property, before, after) for every setting ``plan`` changes on
    ``current``. A credential that is only re-entered shows as ``set`` -> ``re-entered``:
    it cannot be compared."""

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
    ready: Ready | None = None,
    on_step: StepCallback | None = None,
) -> Outcome:
    """Apply ``plan`` through the one apply pipeline: the connector's lock, a re-read (a
    plan made from a state that has changed since is refused), backup, the steps, the
    audit log, the read-back. ``relay_password`` is needed when the plan sends a credential.

    1.1: ``ready(plan, connector)`` is called under the lock before anything is sent (show
    the plan, confirm; raise to stop) and returns the password source for the plan's
    credentials, instead of ``relay_password``; ``on_step(step, result)`` after each step.

    StepFailed when a step fails (its ``outcome`` says what was applied and where the
    backup is).
    """

    def still_current(current: SendConnector) -> Plan:
        _check_still_current(plan, current)
        return plan

    return _run(handle, plan.connector, still_current, relay_password, ready, on_step)


def undo(
    handle: Handle,
    backup_path: Path | str,
    *,
    what_if: bool = False,
    relay_user: str | None = None,
    relay_password: str | None = None,
    ready: Ready | None = None,
    on_step: StepCallback | None = None,
) -> Outcome:
    """Restore what the apply that wrote ``backup_path`` changed, from the connector's
    current state (a setting already back is not sent). The credential is never restored
    (no backup holds a password); ``relay_user``/``relay_password`` go with an old
    mechanism Exchange accepts only with a credential. ``ready`` and ``on_step`` as for
    ``apply``."""

    saved = load_backup(backup_path)
    if handle.connection.url.rstrip("/").lower() != saved.url.rstrip("/").lower():
        raise UsageError(
            f"this backup is of '{saved.connector.name}' at {saved.url}, "
            f"not {handle.connection.url}"
        )
    credential = relay_credential(relay_user) if relay_user and relay_password else None

    def restore(current: SendConnector) -> Plan:
        return undo_plan(
            saved.connector, saved.applied, what_if=what_if, current=current, credential=credential
        )

    return _run(handle, saved.connector.name, restore, relay_password, ready, on_step)


def verify(
    handle: Handle, outcome: Outcome, wait: float, *, say: Callable[[str], None] | None = None
) -> Outcome:
    """(1.1) After an ``apply`` whose plan retried the queues: watch the connector's queues
    on every source server for up to ``wait`` seconds (retrying while they still fail);
    the outcome with its ``verdict``, and the ``exit_status`` the verdict gives."""

    if wait < 0:
        raise UsageError("wait must be 0 or more seconds")
    return watch_queues(handle.session, outcome, wait, say or (lambda _line: None))


def queues(handle: Handle, connector: str | SendConnector) -> list[QueueInfo]:
    """The connector's smart-host queues on each of its source transport servers."""
    found = _connector(handle, connector)
    return handle.session.get_queues(found)


def retry(handle: Handle, connector: str | SendConnector, wait: float) -> QueueVerdict:
    """Retry-Queue every queue of the connector holding messages, then watch them for up
    to ``wait`` seconds (retrying while they still fail): the verdict says whether mail
    flows, still fails, or is not known."""

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
    connector: str,
    make_plan: Callable[[SendConnector], Plan],
    relay_password: str | None,
    ready: Ready | None,
    on_step: StepCallback | None,
) -> Outcome:

    def relay(_plan: Plan, _current: SendConnector) -> Callable[[CredentialRef], str]:
        return _relay_source(relay_password)

    outcome = change(
        handle.session, handle.connection, connector, make_plan, ready or relay,
        locks=handle.locks, on_step=on_step, environ=handle.environ,
    )  # fmt: skip
    if not outcome.ok:
        raise StepFailed(outcome)
    return outcome


def _check_still_current(plan: Plan, current: SendConnector) -> None:
    """Refuse a plan whose replaced values are no longer the connector's, then pre-flight
    it again on the state read under the lock."""

    for step in plan.changes:
        for old in step.replaces or ():
            attribute = ATTRIBUTE_NAMES.get(old.name)
            if attribute is not None and getattr(current, attribute) != old.value:
                raise UsageError(
                    f"'{plan.connector}' changed since the plan was made ({old.name}); "
                    "nothing was sent",
                    hint="make the plan again",
                )
    preflight.check(plan.changes, current)


def _relay_source(password: str | None) -> Callable[[CredentialRef], str]:
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


def _fix_options(connector: str, settings: FixSettings, playbook: Playbook) -> FixOptions:
    own = {item.name: item for item in playbook.inputs}
    inputs = []
    for name, raw in settings.get("inputs", {}).items():
        if name not in own:
            raise UsageError(f"playbook {playbook.id} takes no input {name!r}")
        inputs.append((name, parse_input(own[name], raw)))

    hosts = settings.get("smart_hosts", ())
    return FixOptions(
        connector=connector,
        mechanism=_enum(AuthMechanism, settings.get("mechanism"), "mechanism"),
        username=settings.get("username"),
        reenter_credential=bool(settings.get("reenter_credential", False)),
        smart_hosts=(hosts,) if isinstance(hosts, str) else tuple(hosts),
        port=settings.get("port"),
        require_tls=settings.get("require_tls"),
        tls_auth_level=_enum(TlsAuthLevel, settings.get("tls_auth_level"), "tls_auth_level"),
        tls_domain=settings.get("tls_domain"),
        enable=settings.get("enable"),
        protocol_logging=_enum(
            ProtocolLoggingLevel, settings.get("protocol_logging"), "protocol_logging"
        ),
        extra=tuple(inputs),
    )


def _connector(handle: Handle, connector: str | SendConnector) -> SendConnector:
    if isinstance(connector, SendConnector):
        return connector
    return read_connectors(handle, connector)[0]


def _playbook(playbook: str | Playbook) -> Playbook:
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
