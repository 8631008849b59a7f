"""Build plans from a playbook, typed fix options and (when read) the connector's state.

Shared by ``plan``, ``apply``, the wizard, bulk and the API: build_plan(playbook, options,
*, current, what_if) -> Plan and relay_credential(username) -> CredentialRef. The options
are ``core.options``; undo plans are ``core.undo``; queue filters ``core.opath``.

Change steps come in a fixed order, each one Set-SendConnector call valid on its own given
the steps before it: routing (smart hosts, port, DNS routing), authentication (mechanism and
credential together), TLS, state (Enabled, protocol logging).
"""

from __future__ import annotations

from collections.abc import Callable

from remediate.core import preflight
from remediate.core.errors import PreflightError, UsageError
from remediate.core.exchange import (
    ATTRIBUTE_NAMES,
    AuthMechanism,
    CredentialState,
    ProtocolLoggingLevel,
    SendConnector,
    TlsAuthLevel,
    same_smart_hosts,
)
from remediate.core.opath import connector_queue_filter, is_edge_sync
from remediate.core.options import FixOptions, input_flag
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
    Playbook,
    StepSpec,
)


def relay_credential(username: str) -> CredentialRef:
    """Relay passwords live in the keyring service ``remediate:relay`` under the user name."""
    return CredentialRef(username=username, service=RELAY_SERVICE, key=username)


CredentialFactory = Callable[[str], CredentialRef]



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
        value: ParamValue = getattr(self.current, ATTRIBUTE_NAMES[name])
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
