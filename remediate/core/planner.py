"""Build plans from a playbook, typed fix options and (when read) the connector's state.

Public API, shared by ``plan``, ``apply``, the wizard and bulk:
  FixOptions, add_fix_arguments(parser, playbook_id=None), fix_options_from_args(args),
  build_plan(playbook, options, *, current, what_if, credential_ref_factory) -> Plan,
  undo_plan(before, applied) -> Plan, relay_credential(username) -> CredentialRef.

Change steps come in a fixed order, each one Set-SendConnector call valid on its own given
the steps before it: routing (smart hosts, port, DNS routing), authentication (mechanism and
credential together), TLS, state (Enabled, protocol logging).
"""

from __future__ import annotations

import argparse
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from remediate.core import preflight
from remediate.core.errors import PlaybookError, PreflightError, UsageError
from remediate.core.exchange import (
    PROPERTY_NAMES,
    AuthMechanism,
    CredentialState,
    ProtocolLoggingLevel,
    SendConnector,
    TlsAuthLevel,
    same_smart_hosts,
    smart_host_key,
)
from remediate.core.plan import (
    RELAY_SERVICE,
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
    Input,
    Playbook,
    StepSpec,
    extra_inputs,
    find,
    load_all,
)
from remediate.core.pwsh import unsafe_character

_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


# --- fix options -------------------------------------------------------------------------


@dataclass(frozen=True)
class FixOptions:
    """What the operator asked to change; None/empty means "leave as it is". Validated on
    construction (``UsageError`` naming the option)."""

    connector: str
    mechanism: AuthMechanism | None = None
    username: str | None = None
    reenter_credential: bool = False
    smart_hosts: tuple[str, ...] = ()
    port: int | None = None
    require_tls: bool | None = None
    tls_auth_level: TlsAuthLevel | None = None
    tls_domain: str | None = None
    enable: bool | None = None
    protocol_logging: ProtocolLoggingLevel | None = None
    # inputs a playbook declares beyond the ones above: (name, value), typed and validated
    # by ``parse_input``
    extra: tuple[tuple[str, ParamValue], ...] = ()

    def __post_init__(self) -> None:
        _check_text(self.connector, "--connector", "the Send connector's name")
        if self.username is not None:
            _check_text(self.username, "--username", "the relay account's user name")
            if len(self.username) > preflight.MAX_CREDENTIAL_LENGTH:
                raise UsageError(
                    f"--username: {len(self.username)} characters is more than the "
                    f"{preflight.MAX_CREDENTIAL_LENGTH} Exchange accepts"
                )
        for host in self.smart_hosts:
            check_host(host, "--smart-host")
        if len({smart_host_key(h) for h in self.smart_hosts}) != len(self.smart_hosts):
            raise UsageError("--smart-host: the same smart host is given twice")
        if self.port is not None:
            _parse_port(self.port)
        if self.tls_domain is not None:
            check_host(self.tls_domain.removeprefix("*."), "--tls-domain", allow_ip=False)

    def given(self) -> frozenset[str]:
        """Names of the options that ask for something (the connector name aside)."""
        defaults = {f.name: f.default for f in fields(self)}
        builtin = {
            f.name
            for f in fields(self)
            if f.name not in ("connector", "extra") and getattr(self, f.name) != defaults[f.name]
        }
        return frozenset(builtin | {name for name, value in self.extra if value is not None})

    def value(self, name: str) -> ParamValue:
        """The value of input ``name`` (None when not given)."""
        if name in _ARGUMENTS:
            value: ParamValue = getattr(self, name)
            return None if value == () else value
        return dict(self.extra).get(name)


def _check_text(value: str, option: str, what: str) -> None:
    if not value or not value.strip():
        raise UsageError(f"{option}: {what} is empty")
    bad = unsafe_character(value)
    if bad is not None:
        raise UsageError(
            f"{option}: contains the control character U+{ord(bad):04X}; give {what} "
            "without line breaks, tabs or other invisible characters"
        )


def check_host(host: str, option: str, *, allow_ip: bool = True) -> str:
    """A DNS name or (when allowed) an IP address, bracketed as Exchange writes it
    (``[10.0.0.5]``) or not, or UsageError naming ``option``."""
    bracketed = host.startswith("[") and host.endswith("]")
    try:
        ipaddress.ip_address(host[1:-1] if bracketed else host)
    except ValueError:
        pass
    else:
        if allow_ip:
            return host
        raise UsageError(f"{option}: {host!r} is an IP address; give a domain name")
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise UsageError(
            f"{option}: {host!r} is not a host name"
            + (" or IP address" if allow_ip else "")
            + " (letters, digits and hyphens, labels separated by dots)"
        )
    if labels[-1].isdigit():
        raise UsageError(f"{option}: {host!r} looks like a mistyped IP address")
    return host


# --- argparse ----------------------------------------------------------------------------

# input name -> (flags, argparse keyword arguments)
_ARGUMENTS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "mechanism": (
        ("--mechanism",),
        {
            "metavar": "NAME",
            "help": "SmartHostAuthMechanism: " + ", ".join(m.value for m in AuthMechanism),
        },
    ),
    "username": (
        ("--username",),
        {
            "metavar": "USER",
            "help": "relay account user name; the password is asked for by "
            "Get-Credential in the script, or taken from the keyring by apply",
        },
    ),
    "reenter_credential": (
        ("--reenter-credential",),
        {
            "action": "store_true",
            "default": False,
            "help": "send the credential again although the connector holds one "
            "(it cannot be compared)",
        },
    ),
    "smart_hosts": (
        ("--smart-host",),
        {
            "dest": "smart_hosts",
            "action": "append",
            "default": None,
            "metavar": "HOST",
            "help": "smart host name or IP address (repeat for several)",
        },
    ),
    "port": (("--port",), {"metavar": "N", "help": "smart host port, 0-65535"}),
    "require_tls": (
        ("--require-tls",),
        {"action": argparse.BooleanOptionalAction, "default": None, "help": "RequireTLS"},
    ),
    "tls_auth_level": (
        ("--tls-auth-level",),
        {"metavar": "LEVEL", "help": "TlsAuthLevel: " + ", ".join(t.value for t in TlsAuthLevel)},
    ),
    "tls_domain": (
        ("--tls-domain",),
        {"metavar": "DOMAIN", "help": "TlsDomain (with DomainValidation)"},
    ),
    "enable": (
        ("--enable",),
        {"action": "store_const", "const": True, "default": None, "help": "enable the connector"},
    ),
    "protocol_logging": (
        ("--protocol-logging",),
        {"metavar": "LEVEL", "help": "ProtocolLoggingLevel: None or Verbose"},
    ),
}


def add_fix_arguments(parser: argparse.ArgumentParser, playbook_id: str | None = None) -> None:
    """Add the fix options (all of them, or only those ``playbook_id`` takes), with one more
    for each input a playbook declares beyond the built-in ones (``--fqdn``)."""
    books = (find(playbook_id),) if playbook_id is not None else load_all()
    names: Any = _ARGUMENTS if playbook_id is None else books[0].input_names
    group = parser.add_argument_group("fix options")
    for name, (flags, kwargs) in _ARGUMENTS.items():
        if name in names:
            group.add_argument(*flags, **{"dest": name, **kwargs})
    for item in extra_inputs(books).values():
        try:
            group.add_argument(
                input_flag(item.name), dest=input_dest(item.name), **_extra_kwargs(item)
            )
        except argparse.ArgumentError as exc:
            raise PlaybookError(
                f"{item.where}: inputs: {item.name!r}: its option {input_flag(item.name)} is "
                "already an option of the command; rename the input"
            ) from exc


def input_flag(name: str) -> str:
    """The command-line option of input ``name``."""
    known = _ARGUMENTS.get(name)
    return known[0][0] if known else "--" + name.replace("_", "-")


def input_dest(name: str) -> str:
    """The argparse destination of a playbook's own input."""
    return "input_" + name


def _extra_kwargs(item: Input) -> dict[str, Any]:
    help_text = item.help + (f" ({', '.join(item.choices)})" if item.choices else "")
    if item.type == "flag":
        return {"action": "store_const", "const": True, "default": None, "help": help_text}
    if item.type == "bool":
        return {"action": argparse.BooleanOptionalAction, "default": None, "help": help_text}
    if item.type == "hosts":
        return {"action": "append", "default": None, "metavar": "HOST", "help": help_text}
    return {"metavar": item.type.upper(), "help": help_text}


def fix_options_from_args(args: argparse.Namespace, connector: str | None = None) -> FixOptions:
    """Typed, validated FixOptions from parsed arguments (UsageError on bad values)."""
    get = vars(args).get
    name = connector if connector is not None else get("connector")
    if name is None:
        raise UsageError("--connector: give the Send connector's name")
    extra = []
    for item in extra_inputs(load_all()).values():
        raw = get(input_dest(item.name))
        if raw is not None:
            extra.append((item.name, parse_input(item, raw)))
    return FixOptions(
        connector=name,
        mechanism=_parse(AuthMechanism, get("mechanism"), "--mechanism"),
        username=get("username"),
        reenter_credential=bool(get("reenter_credential")),
        smart_hosts=tuple(get("smart_hosts") or ()),
        port=_parse_port(get("port")),
        require_tls=get("require_tls"),
        tls_auth_level=_parse(TlsAuthLevel, get("tls_auth_level"), "--tls-auth-level"),
        tls_domain=get("tls_domain"),
        enable=get("enable"),
        protocol_logging=_parse(
            ProtocolLoggingLevel, get("protocol_logging"), "--protocol-logging"
        ),
        extra=tuple(extra),
    )


def parse_input(item: Input, raw: Any) -> ParamValue:
    """The typed value of a playbook's own input (``GENERIC_TYPES``), or UsageError naming
    its option."""
    option = input_flag(item.name)
    if item.type in ("flag", "bool"):
        if isinstance(raw, str):
            lowered = raw.strip().lower()
            if lowered not in ("true", "false", "yes", "no", "y", "n"):
                raise UsageError(f"{option}: {raw!r} is not yes or no")
            return lowered in ("true", "yes", "y")
        return bool(raw)
    if item.type == "hosts":
        hosts = raw.split(",") if isinstance(raw, str) else list(raw)
        values = tuple(h.strip() for h in hosts if h.strip())
        if not values:
            raise UsageError(f"{option}: give at least one host name or IP address")
        return tuple(check_host(h, option) for h in values)
    text = str(raw).strip()
    if item.type in ("port", "int"):
        low = item.minimum if item.minimum is not None else 0
        high = (
            item.maximum if item.maximum is not None else (65535 if item.type == "port" else None)
        )
        span = f"{low}-{high}" if high is not None else f"{low} or more"
        if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
            raise UsageError(f"{option}: {text!r} is not a number {span}")
        return int(text)
    _check_text(text, option, item.help)
    if item.max_length is not None and len(text) > item.max_length:
        raise UsageError(f"{option}: longer than {item.max_length} characters")
    if item.choices:
        match = next((c for c in item.choices if c.lower() == text.lower()), None)
        if match is None:
            raise UsageError(f"{option}: {text!r} is not one of: {', '.join(item.choices)}")
        return match
    if item.type == "domain":
        return check_host(text, option, allow_ip=False)
    if item.type == "host":
        return check_host(text, option)
    return text


def _parse(enum: Any, text: str | None, option: str) -> Any:
    if text is None:
        return None
    try:
        return enum.parse(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from exc


def port_number(value: object) -> int:
    """``value`` as a Send connector port: Set-SendConnector -Port takes 0-65535
    (exchange-notes.md, from Microsoft's Set-SendConnector page). ValueError otherwise; the
    command line, the wizard, answers and bulk files all use this one rule."""
    text = "" if isinstance(value, bool) else str(value).strip()
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        shown = text if text.isdigit() else repr(value)
        raise ValueError(f"{shown} is not a port number (0-65535)")
    return int(text)


def _parse_port(text: str | int | None) -> int | None:
    if text is None:
        return None
    try:
        return port_number(text)
    except ValueError as exc:
        raise UsageError(f"--port: {exc}") from None


# --- plans -------------------------------------------------------------------------------


def relay_credential(username: str) -> CredentialRef:
    """Relay passwords live in the keyring service ``remediate:relay`` under the user name."""
    return CredentialRef(username=username, service=RELAY_SERVICE, key=username)


CredentialFactory = Callable[[str], CredentialRef]

_ATTR = {v: k for k, v in PROPERTY_NAMES.items()}


def build_plan(
    playbook: Playbook,
    options: FixOptions,
    *,
    current: SendConnector | None = None,
    what_if: bool = False,
    credential_ref_factory: CredentialFactory = relay_credential,
) -> Plan:
    """The plan for ``options`` on one connector; PreflightError/UsageError when refused.

    With ``current`` (read from Exchange) change steps carry only what differs, and their
    ``replaces`` hold the current values; without it every given setting is sent and the
    notes say which rules could not be checked.
    """
    _check_inputs(playbook, options)
    builder = _Builder(playbook, options, current, what_if, credential_ref_factory)
    changes = builder.changes()
    checked, changes = _checked(changes, current)
    after_hosts = checked.after.smart_hosts if checked.after else (options.smart_hosts or None)
    notes = list(checked.notes)
    steps = builder.reads(current.smart_hosts if current else None, notes)
    if changes:
        steps += changes
        steps += builder.verify(after_hosts, notes)
        notes += builder.logging_note(changes)
    notes += builder.notes(bool(changes))
    return Plan(
        playbook=playbook.id,
        event_id=playbook.event.id,
        connector=options.connector,
        steps=tuple(steps),
        what_if=what_if,
        title=playbook.title,
        notes=tuple(dict.fromkeys(notes)),
    )


MERGED_TEMPLATE = "set_send_connector" + TEMPLATE_SUFFIX


def _checked(
    changes: list[Step], current: SendConnector | None
) -> tuple[preflight.Checked, list[Step]]:
    """Pre-flight the change steps; when the connector is invalid as stored and only the
    changes sent together repair it, send them as one Set-SendConnector (Exchange validates
    the whole connector on every call, so separate calls would each be refused)."""
    try:
        return preflight.check(changes, current), changes
    except PreflightError as refused:
        if current is None or len(changes) < 2 or not preflight.problems(current):
            raise
        merged = [_merge(changes)]
        try:
            checked = preflight.check(merged, current)
        except PreflightError:
            raise refused from None
        note = (
            "the connector is invalid as stored, and Exchange checks the whole connector on "
            "every change: the settings are sent in one Set-SendConnector"
        )
        return preflight.Checked((*checked.notes, note), checked.after), merged


def _merge(changes: list[Step]) -> Step:
    names: dict[str, Parameter] = {}
    replaced: dict[str, Parameter] = {}
    tail: list[Parameter] = []
    for step in changes:
        for p in step.parameters:
            if p.name in ("Confirm", "WhatIf"):
                if p not in tail:
                    tail.append(p)
            else:
                names.setdefault(p.name, p)
        for p in step.replaces or ():
            replaced.setdefault(p.name, p)
    first = changes[0]
    return Step(
        cmdlet=first.cmdlet,
        parameters=(*names.values(), *tail),
        kind=StepKind.CHANGE,
        reason=" ".join(dict.fromkeys(s.reason for s in changes)),
        template=MERGED_TEMPLATE,
        action=next((s.action for s in changes if s.credential is not None), first.action),
        replaces=tuple(replaced.values()) if first.replaces is not None else None,
    )


def _check_inputs(playbook: Playbook, options: FixOptions) -> None:
    given = options.given()
    extra = sorted(given - playbook.input_names)
    takes = "options it takes: " + " ".join(input_flag(i.name) for i in playbook.inputs)
    if extra:
        flags = ", ".join(input_flag(name) for name in extra)
        raise UsageError(
            f"{flags}: not an option of playbook {playbook.event.id} ({playbook.id})", hint=takes
        )
    if not given:
        raise UsageError(
            f"nothing to change: give at least one fix option for playbook {playbook.event.id}",
            hint=takes,
        )


class _Builder:
    def __init__(
        self,
        playbook: Playbook,
        options: FixOptions,
        current: SendConnector | None,
        what_if: bool,
        credential_ref_factory: CredentialFactory,
    ) -> None:
        self.playbook = playbook
        self.options = options
        self.current = current
        self.what_if = what_if
        self.credential_ref_factory = credential_ref_factory
        self.credential_kept = False

    # reads and read-back

    def reads(self, hosts: tuple[str, ...] | None, notes: list[str]) -> list[Step]:
        return [s for spec in self.playbook.reads for s in self.read(spec, hosts, notes)]

    def verify(self, hosts: tuple[str, ...] | None, notes: list[str]) -> list[Step]:
        return [s for spec in self.playbook.verify for s in self.read(spec, hosts, notes)]

    def read(self, spec: StepSpec, hosts: tuple[str, ...] | None, notes: list[str]) -> list[Step]:
        """The read (or retry) ``spec`` asks for. Queues are per source transport server:
        Get-Queue and Retry-Queue without -Server answer only for the server the session
        runs on (exchange-notes.md, "Transport behaviour"), so there is one step per server."""
        identity = Parameter("Identity", self.options.connector)
        if spec.template == "get_send_connector":
            return [self._step("Get-SendConnector", (identity,), StepKind.READ, spec)]
        queue_filter = connector_queue_filter(self.current, hosts)
        if queue_filter is None:
            if spec in self.playbook.reads:
                notes.append(
                    "Get-Queue before the change left out: the connector was not read, so its "
                    "current queue cannot be named (apply reads the connector first)"
                )
            else:
                how = "give --smart-host, or use apply"
                if "smart_hosts" not in self.playbook.input_names:
                    how = "apply reads the connector first"
                notes.append(
                    "queue read-back left out: the smart hosts are not known, so the "
                    f"connector's queue cannot be named ({how})"
                )
            return []
        filter_param = Parameter("Filter", queue_filter)
        servers: tuple[str | None, ...] = (None,)
        if self.current is not None and self.current.source_transport_servers:
            servers = self.current.source_transport_servers
        else:
            notes.append(
                "the connector's source transport servers are not known (it was not read): "
                "Get-Queue and Retry-Queue without -Server answer only for the server this "
                "session runs on"
            )
        steps = []
        for server in servers:
            on = (Parameter("Server", server),) if server else ()
            if spec.template == "get_queue":
                include = Parameter("Include", "SmartHostConnectorDelivery")
                params = (*on, include, filter_param)
                steps.append(self._step("Get-Queue", params, StepKind.READ, spec))
            else:
                params = (*on, filter_param, *self._tail())
                step = self._step("Retry-Queue", params, StepKind.CHANGE, spec, replaces=())
                steps.append(step)
        return steps

    # changes

    def changes(self) -> list[Step]:
        steps: list[Step] = []
        dns_off_sent = False
        for spec in self.playbook.fixes:
            wanted = self._wanted(spec, dns_off_sent)
            if not wanted:
                continue
            dns_off_sent = dns_off_sent or any(name == "DNSRoutingEnabled" for name, _ in wanted)
            force = is_edge_sync(self.options.connector) and any(
                name in ("SmartHosts", "AddressSpaces") for name, _ in wanted
            )
            params = (
                Parameter("Identity", self.options.connector),
                *(Parameter(n, v) for n, v in wanted),
                *((Parameter("Force", SWITCH),) if force else ()),
                *self._tail(),
            )
            replaces = None
            if self.current is not None:
                replaces = tuple(Parameter(n, self._current_value(n)) for n, _ in wanted)
            steps.append(
                self._step("Set-SendConnector", params, StepKind.CHANGE, spec, replaces=replaces)
            )
        return steps

    def _wanted(self, spec: StepSpec, dns_off_sent: bool) -> list[tuple[str, ParamValue]]:
        """The parameters the fix ``spec`` sends: each input its ``sets`` names, with what
        Exchange ties to that parameter (``_RULES``)."""
        out: list[tuple[str, ParamValue]] = []
        for parameter, name in spec.sets:
            rule = _RULES.get(parameter)
            value = self.options.value(name)
            if rule is None:
                self._add(out, parameter, value)
            else:
                rule(self, out, value, dns_off_sent)
        return out

    def _smart_hosts(
        self, out: list[tuple[str, ParamValue]], value: ParamValue, dns_off_sent: bool
    ) -> None:
        """Smart hosts mean DNS routing off (Exchange refuses them on a DNS-routed one)."""
        if value:
            self._add(out, "SmartHosts", value)
            self._add(out, "DNSRoutingEnabled", False)

    def _mechanism(
        self, out: list[tuple[str, ParamValue]], value: ParamValue, dns_off_sent: bool
    ) -> None:
        """A mechanism other than None needs DNS routing off."""
        if value is not None and self._differs("SmartHostAuthMechanism", value):
            if value is not AuthMechanism.NONE and not dns_off_sent:
                self._add(out, "DNSRoutingEnabled", False)
            out.append(("SmartHostAuthMechanism", value))

    def _credential_rule(
        self, out: list[tuple[str, ParamValue]], value: ParamValue, dns_off_sent: bool
    ) -> None:
        credential = self._credential()
        if credential is not None:
            out.append(("AuthenticationCredential", credential))

    def _tls_auth_level(
        self, out: list[tuple[str, ParamValue]], value: ParamValue, dns_off_sent: bool
    ) -> None:
        self._add(out, "TlsAuthLevel", value)
        if self._leaves_domain_validation():
            out.append(("TlsDomain", None))  # Exchange keeps TlsDomain only with it

    def logging_note(self, changes: list[Step]) -> list[str]:
        """Verbose protocol logging is for the investigation, but it stays on after this
        plan: Exchange picks a change up only after AD replication and a configuration
        reload, so turning it off in the same run would log nothing (exchange-notes.md)."""
        verbose = any(
            p.name == "ProtocolLoggingLevel" and p.value is ProtocolLoggingLevel.VERBOSE
            for step in changes
            for p in step.parameters
        )
        before = self.current.protocol_logging_level if self.current else ProtocolLoggingLevel.NONE
        if not verbose or before is ProtocolLoggingLevel.VERBOSE:
            return []
        return [
            "verbose protocol logging stays on: Exchange applies a change only after AD "
            "replication and a configuration reload, so turning it off now would log nothing; "
            f"once the retry is in the send protocol log, set ProtocolLoggingLevel {before} "
            f"again (remediate apply {self.playbook.event.id} --connector NAME "
            f"--protocol-logging {before})"
        ]

    def _leaves_domain_validation(self) -> bool:
        level = self.options.tls_auth_level
        return (
            level not in (None, TlsAuthLevel.DOMAIN_VALIDATION)
            and self.options.tls_domain is None
            and self.current is not None
            and bool(self.current.tls_domain)
        )

    def _add(self, out: list[tuple[str, ParamValue]], name: str, value: ParamValue) -> None:
        if value is not None and self._differs(name, value):
            out.append((name, value))

    def _credential(self) -> CredentialRef | None:
        """A credential is never compared: Exchange returns only whether one is set, never
        its user name. It is sent when asked to re-enter it, when the connector holds none
        (or that is unknown), or with a change of mechanism."""
        o = self.options
        if o.username is None:
            if o.reenter_credential:
                raise UsageError(
                    "--reenter-credential: give --username too (Exchange never returns the "
                    "relay user name, so the credential is always entered in full)"
                )
            return None
        mechanism_changes = o.mechanism is not None and self._differs(
            "SmartHostAuthMechanism", o.mechanism
        )
        have = self.current.credential if self.current else CredentialState.UNKNOWN
        if have is CredentialState.SET and not (o.reenter_credential or mechanism_changes):
            self.credential_kept = True
            return None
        return self.credential_ref_factory(o.username)

    def _current_value(self, name: str) -> ParamValue:
        assert self.current is not None
        value: ParamValue = getattr(self.current, _ATTR[name])
        return value

    def _differs(self, name: str, value: ParamValue) -> bool:
        if self.current is None:
            return True
        have = self._current_value(name)
        if name == "SmartHosts" and isinstance(value, tuple) and isinstance(have, tuple):
            return not same_smart_hosts(value, have)
        if isinstance(value, tuple) and isinstance(have, tuple):
            return [v.lower() for v in value] != [h.lower() for h in have]
        return have != value

    def _tail(self) -> tuple[Parameter, ...]:
        tail = (Parameter("Confirm", False),)
        return (*tail, Parameter("WhatIf", SWITCH)) if self.what_if else tail

    def _step(
        self,
        cmdlet: str,
        params: tuple[Parameter, ...],
        kind: StepKind,
        spec: StepSpec,
        replaces: tuple[Parameter, ...] | None = None,
    ) -> Step:
        return Step(
            cmdlet=cmdlet,
            parameters=params,
            kind=kind,
            reason=spec.reason,
            template=spec.template + TEMPLATE_SUFFIX,
            action=spec.action,
            replaces=replaces if kind is StepKind.CHANGE else None,
        )

    def notes(self, has_changes: bool) -> list[str]:
        notes = []
        if self.current is None:
            notes.append(
                "planned without reading the connector: every given setting is sent, "
                "and Exchange checks what could not be checked here"
            )
        elif not has_changes:
            notes.append("no change: the connector already has these settings")
        if self.credential_kept:
            notes.append(
                "the connector already holds a credential, and Exchange never returns its "
                "user name, so it cannot be compared: it was left as it is (re-enter it "
                "with --reenter-credential)"
            )
        if (
            self.current is not None
            and self.current.force_helo
            and self.options.mechanism is AuthMechanism.BASIC_AUTH_REQUIRE_TLS
        ):
            notes.append(
                "ForceHELO is on: HELO has no STARTTLS or AUTH, so BasicAuthRequireTLS "
                "will still fail until ForceHELO is turned off"
            )
        return notes


_Rule = Callable[[_Builder, list[tuple[str, ParamValue]], ParamValue, bool], None]
# Set-SendConnector parameters that bring others with them (Exchange's rules, not a
# playbook's choice); any other parameter a playbook ``sets`` is sent when it differs.
_RULES: dict[str, _Rule] = {
    "SmartHosts": _Builder._smart_hosts,
    "SmartHostAuthMechanism": _Builder._mechanism,
    "AuthenticationCredential": _Builder._credential_rule,
    "TlsAuthLevel": _Builder._tls_auth_level,
}


EDGE_SYNC_PREFIX = "EdgeSync -"


def is_edge_sync(connector: str) -> bool:
    """The connectors EdgeSync creates ("EdgeSync - Site to Internet"): Exchange asks
    ShouldContinue for their SmartHosts/AddressSpaces changes, which only -Force answers
    (-Confirm:$false does not); exchange-notes.md, "Transport behaviour"."""
    return connector.strip().lower().startswith(EDGE_SYNC_PREFIX.lower())


def opath_literal(value: str) -> str:
    """A value inside an OPATH filter: single-quoted, an embedded ' doubled."""
    return "'" + value.replace("'", "''") + "'"


def connector_queue_filter(
    connector: SendConnector | None, smart_hosts: tuple[str, ...] | None
) -> str | None:
    """An OPATH filter naming the connector's smart-host queue, or None when unknown.

    By NextHopConnector (the GUID) when the connector was read, else by NextHopDomain, which
    for a smart-host queue is the connector's smart-host string (unverified for several
    smart hosts: joined with a comma here).
    """
    if connector is not None and connector.guid:
        return f"NextHopConnector -eq {opath_literal(connector.guid)}"
    if smart_hosts:
        return f"NextHopDomain -eq {opath_literal(','.join(smart_hosts))}"
    return None


# --- undo ----------------------------------------------------------------------------------


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
            attr = _ATTR.get(p.name)
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
            replaces=tuple(Parameter(n, getattr(state, _ATTR[n])) for n in values),
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
