"""The tool's pre-flight rules: what Set-SendConnector would refuse or silently mangle.

``check`` replays a plan's Set-SendConnector steps, in order, on what is known of the
connector (everything when the current state was read, nothing when planning offline) and
raises ``PreflightError`` for the first change Exchange would refuse or quietly damage. When a
rule needs a value nobody knows (offline), the rule is skipped and a note says so.
``problems`` lists the rules a connector breaks as it stands (for diagnosis).

Rules (exchange-notes.md, "Rules Set-SendConnector enforces"; the lab has its own copy):
  mechanism-needs-smart-hosts   a mechanism other than None needs DNS routing off
  smart-hosts-need-routing-off  SmartHosts on a connector that stays DNS-routed
  smart-host-not-set            DNS routing off with no smart hosts (SmartHostNotSet)
  credential-not-set            BasicAuth* without a credential (AuthenticationCredentialNotSet)
  require-tls-ignore-starttls   RequireTLS together with IgnoreSTARTTLS
  tls-level-needs-require-tls   TlsAuthLevel without RequireTLS
  tls-domain-needs-domain-validation / domain-validation-needs-tls-domain
  address-space-required        no address spaces
  dns-routing-wipes-credential  (silent) DNS routing on with a mechanism other than None
                                resets the mechanism to None and deletes the credential
                                without an error; allowed only when the same step also sets
                                SmartHostAuthMechanism None (then the credential stays)
  credential-needs-smart-hosts  (the tool's own) a credential sent to a DNS-routed connector
  user-name                     credential user name empty, unsafe or over 256 characters
  empty-password                (silent) an empty password is ignored: ``check_password``,
                                called by whoever resolves the secret
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any

from remediate.core.errors import PreflightError
from remediate.core.exchange import (
    PROPERTY_NAMES,
    AuthMechanism,
    CredentialState,
    SendConnector,
    TlsAuthLevel,
)
from remediate.core.plan import CredentialRef, Step
from remediate.core.pwsh import unsafe_character

MAX_CREDENTIAL_LENGTH = 256

_ATTR_BY_PARAMETER = {v.lower(): k for k, v in PROPERTY_NAMES.items()}
_NOT_PROPERTIES = {"identity", "confirm", "whatif", "force"}


class _Unknown:
    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN: Any = _Unknown()


@dataclass(frozen=True)
class Checked:
    """The outcome of a successful check: notes on rules that could not be checked, and the
    connector as it will be after the steps (None when the state was not fully known)."""

    notes: tuple[str, ...]
    after: SendConnector | None


class _State:
    """What is known of a connector: attribute name -> value; missing means unknown."""

    def __init__(self, known: dict[str, Any]) -> None:
        self.known = known

    @classmethod
    def of(cls, connector: SendConnector | None) -> _State:
        if connector is None:
            return cls({})
        return cls({f.name: getattr(connector, f.name) for f in fields(connector)})

    def get(self, attr: str) -> Any:
        return self.known.get(attr, UNKNOWN)

    def to_connector(self) -> SendConnector | None:
        names = {f.name for f in fields(SendConnector)}
        if set(self.known) >= names:
            return SendConnector(**{k: v for k, v in self.known.items() if k in names})
        return None


def check(steps: Iterable[Step], current: SendConnector | None) -> Checked:
    """Replay the Set-SendConnector steps on ``current``; raise PreflightError or return notes."""
    state = _State.of(current)
    notes: list[str] = []
    for step in steps:
        if step.cmdlet.lower() != "set-sendconnector":
            continue
        changes = _changes_of(step)
        state = _apply(state, changes, notes)
        if current is not None:
            _whole_connector(state)
    return Checked(tuple(dict.fromkeys(notes)), state.to_connector())


def _whole_connector(state: _State) -> None:
    """Exchange validates the whole connector on every Set-SendConnector, not only what the
    call changes: a connector already broken as stored refuses a change that leaves it broken.
    """
    for rule in _STATE_RULES:
        try:
            rule(state, _as_stored(state), [])
        except PreflightError as exc:
            raise PreflightError(
                exc.rule,
                exc.parameter,
                exc.message.removeprefix(f"{exc.parameter}: "),
                hint="Exchange checks the whole connector on every change, so this step "
                "is refused until the same call also repairs that",
            ) from None


def _as_stored(state: _State) -> dict[str, Any]:
    """The whole connector as the "changes" Exchange validates on every save. The stored
    credential is left out: only sending one to a DNS-routed connector is refused (the
    tool's own rule); one kept there after a switch to DNS routing is valid."""
    return {k: v for k, v in state.known.items() if k != "credential"}


def check_username(username: str) -> str:
    """A credential user name Exchange stores as given (or raise PreflightError)."""
    if not username.strip():
        _refuse(
            "user-name",
            "AuthenticationCredential",
            "the user name is empty; give the relay account's user name (often its e-mail address)",
        )
    if len(username) > MAX_CREDENTIAL_LENGTH:
        _refuse(
            "user-name",
            "AuthenticationCredential",
            f"the user name has {len(username)} "
            f"characters; Exchange accepts at most {MAX_CREDENTIAL_LENGTH}",
        )
    if unsafe_character(username) is not None:
        _refuse(
            "user-name",
            "AuthenticationCredential",
            "the user name contains a control character; type it again without line breaks or tabs",
        )
    return username


def check_password(password: str) -> None:
    """Exchange silently ignores a credential with an empty password: refuse it here.

    Called by whoever turns a CredentialRef into a real credential. The message never
    contains the password.
    """
    if password == "":
        _refuse(
            "empty-password",
            "AuthenticationCredential",
            "the password is empty; Exchange "
            "would silently keep no credential, so enter the relay account's password",
        )
    if len(password) > MAX_CREDENTIAL_LENGTH:
        _refuse(
            "empty-password",
            "AuthenticationCredential",
            "the password is longer than "
            f"{MAX_CREDENTIAL_LENGTH} characters, which Exchange does not accept",
        )


def _refuse(rule: str, parameter: str, message: str) -> None:
    raise PreflightError(rule, parameter, message)


def _changes_of(step: Step) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for p in step.parameters:
        key = p.name.lower()
        if key in _NOT_PROPERTIES:
            continue
        attr = _ATTR_BY_PARAMETER.get(key)
        if attr is None:
            raise PreflightError(
                "unknown-parameter", p.name, "is not a Set-SendConnector parameter this tool knows"
            )
        value = p.value
        if attr == "credential":
            if isinstance(value, CredentialRef):
                check_username(value.username)
                value = CredentialState.SET
            else:
                value = CredentialState.NOT_SET
        changes[attr] = value
    return changes


def _apply(old: _State, changes: dict[str, Any], notes: list[str]) -> _State:
    """One Set-SendConnector call: validate it against ``old`` and return the new state."""
    new = _State({**old.known, **changes})
    _dns_routing_switch(old, new, changes, notes)
    for rule in _STATE_RULES:
        rule(new, changes, notes)
    return new


def problems(connector: SendConnector) -> tuple[PreflightError, ...]:
    """What is wrong with a connector as it is (for diagnosis): each rule it breaks now."""
    state = _State.of(connector)
    found = []
    for rule in _STATE_RULES:
        try:
            rule(state, _as_stored(state), [])
        except PreflightError as exc:
            found.append(exc)
    return tuple(found)


def _dns_routing_switch(
    old: _State, new: _State, changes: dict[str, Any], notes: list[str]
) -> None:
    """Exchange's silent rules for turning DNS routing on (exchange-notes.md, "Transport
    behaviour that the lab must copy"): a mechanism left other than None is reset to None
    and the credential deleted, without an error; the smart hosts go."""
    if changes.get("dns_routing_enabled") is not True or old.get("dns_routing_enabled") is True:
        return
    if changes.get("smart_host_auth_mechanism") is not AuthMechanism.NONE:
        _refuse(
            "dns-routing-wipes-credential",
            "DNSRoutingEnabled",
            "switching to DNS routing "
            "silently deletes the smart hosts, the authentication mechanism and the stored "
            "credential; keep -DNSRoutingEnabled $false, or also pass "
            "-SmartHostAuthMechanism None to show the loss is intended",
        )
    if changes.get("smart_hosts"):
        _refuse(
            "smart-hosts-need-routing-off",
            "SmartHosts",
            "smart hosts cannot be set while "
            "switching the connector to DNS routing; drop -SmartHosts or keep "
            "-DNSRoutingEnabled $false",
        )
    new.known.update(smart_hosts=())


def _routing_rules(new: _State, changes: dict[str, Any], notes: list[str]) -> None:
    dns = new.get("dns_routing_enabled")
    mechanism = new.get("smart_host_auth_mechanism")
    if "smart_host_auth_mechanism" in changes and mechanism is not AuthMechanism.NONE:
        if dns is True:
            _refuse(
                "mechanism-needs-smart-hosts",
                "SmartHostAuthMechanism",
                f"{mechanism} "
                "needs smart-host routing but the connector uses DNS routing; pass "
                "-SmartHosts and -DNSRoutingEnabled $false in the same or an earlier step",
            )
        if dns is UNKNOWN:
            notes.append(
                "the connector was not read: whether it already routes through smart "
                "hosts (needed by SmartHostAuthMechanism) was not checked"
            )
    if changes.get("smart_hosts"):
        if dns is True:
            _refuse(
                "smart-hosts-need-routing-off",
                "SmartHosts",
                "the connector stays "
                "DNS-routed, so Exchange refuses smart hosts; add -DNSRoutingEnabled $false",
            )
        if dns is UNKNOWN:
            notes.append(
                "the connector was not read: whether it uses DNS routing (which "
                "refuses SmartHosts) was not checked"
            )
    if dns is False and ("dns_routing_enabled" in changes or "smart_hosts" in changes):
        hosts = new.get("smart_hosts")
        if hosts is UNKNOWN:
            notes.append(
                "the connector was not read: whether it has smart hosts (needed when "
                "DNS routing is off) was not checked"
            )
        elif not hosts:
            _refuse(
                "smart-host-not-set",
                "SmartHosts",
                "DNS routing is off but no smart host "
                "is set (SmartHostNotSet); give at least one --smart-host",
            )


def _credential_rule(new: _State, changes: dict[str, Any], notes: list[str]) -> None:
    if changes.get("credential") is CredentialState.SET and new.get("dns_routing_enabled") is True:
        _refuse(
            "credential-needs-smart-hosts",
            "AuthenticationCredential",
            "the connector uses DNS routing, where a credential is never used and Exchange "
            "deletes it; give --smart-host and --mechanism with it",
        )
    mechanism = new.get("smart_host_auth_mechanism")
    touched = {"smart_host_auth_mechanism", "credential", "dns_routing_enabled"} & set(changes)
    if not touched or not isinstance(mechanism, AuthMechanism) or not mechanism.needs_credential:
        return
    credential = new.get("credential")
    if credential is UNKNOWN or credential is CredentialState.UNKNOWN:
        notes.append(
            f"whether the connector holds a credential (needed by {mechanism}) was not "
            "known, so it was not checked"
        )
    elif credential is CredentialState.NOT_SET:
        _refuse(
            "credential-not-set",
            "AuthenticationCredential",
            f"{mechanism} needs a "
            "credential and the connector has none (AuthenticationCredentialNotSet); "
            "give --username so the password is entered with this change",
        )


def _tls_rules(new: _State, changes: dict[str, Any], notes: list[str]) -> None:
    tls_keys = {
        "require_tls",
        "ignore_starttls",
        "tls_auth_level",
        "tls_domain",
        "dns_routing_enabled",
        "smart_hosts",
    }
    if not tls_keys & set(changes):
        return
    require_tls = new.get("require_tls")
    level = new.get("tls_auth_level")
    domain = new.get("tls_domain")
    if require_tls is True and new.get("ignore_starttls") is True:
        _refuse(
            "require-tls-ignore-starttls",
            "RequireTLS",
            "RequireTLS cannot be on while IgnoreSTARTTLS is on; also pass -IgnoreSTARTTLS $false",
        )
    if level not in (None, UNKNOWN):
        if require_tls is False:
            _refuse(
                "tls-level-needs-require-tls",
                "TlsAuthLevel",
                "TlsAuthLevel needs RequireTLS; add --require-tls",
            )
        if require_tls is UNKNOWN and "tls_auth_level" in changes:
            notes.append(
                "the connector was not read: whether RequireTLS is on (needed by "
                "TlsAuthLevel) was not checked"
            )
    if domain not in (None, UNKNOWN, "") and level is not TlsAuthLevel.DOMAIN_VALIDATION:
        if level is UNKNOWN:
            notes.append(
                "the connector was not read: whether TlsAuthLevel is DomainValidation "
                "(needed by TlsDomain) was not checked"
            )
        else:
            _refuse(
                "tls-domain-needs-domain-validation",
                "TlsDomain",
                "TlsDomain can only be "
                "set when TlsAuthLevel is DomainValidation; add --tls-auth-level "
                "DomainValidation or drop --tls-domain",
            )
    if level is TlsAuthLevel.DOMAIN_VALIDATION and new.get("dns_routing_enabled") is False:
        if domain is UNKNOWN:
            notes.append(
                "the connector was not read: whether TlsDomain is set (needed by "
                "DomainValidation) was not checked"
            )
        elif not domain:
            _refuse(
                "domain-validation-needs-tls-domain",
                "TlsDomain",
                "DomainValidation on a "
                "smart-host connector needs the domain the certificate must name; add "
                "--tls-domain",
            )


def _address_space_rule(new: _State, changes: dict[str, Any], notes: list[str]) -> None:
    if "address_spaces" in changes and not new.get("address_spaces"):
        _refuse(
            "address-space-required",
            "AddressSpaces",
            "a Send connector needs at least one address space, for example 'SMTP:*;1'",
        )


_STATE_RULES = (_routing_rules, _credential_rule, _tls_rules, _address_space_rule)
