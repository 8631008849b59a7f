"""The tool's pre-flight rules against the lab's Exchange rules, two independent codes.

Hypothesis draws a connector and one Set-SendConnector change; the lab (playing Exchange)
saves it or refuses it. Whatever the lab refuses, the tool must refuse first; whatever the lab
would silently damage (a stored credential wiped by DNS routing), the tool must refuse too,
unless the same step says the loss is intended (-SmartHostAuthMechanism None).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remediate.core.errors import PreflightError
from remediate.core.exchange import (
    PROPERTY_NAMES,
    AuthMechanism,
    CredentialState,
    SendConnector,
    TlsAuthLevel,
)
from remediate.core.plan import CredentialRef, Parameter, Step, StepKind
from remediate.core.preflight import check
from remediate.lab import rules
from remediate.lab.api import LabCredential
from remediate.lab.org import Connector

HOSTS = st.lists(
    st.sampled_from(["relay.contoso.lab", "10.0.0.25", "smtp.example.org"]), max_size=2
)
MECHANISMS = st.sampled_from(list(AuthMechanism))
LEVELS = st.one_of(st.none(), st.sampled_from(list(TlsAuthLevel)))
DOMAINS = st.one_of(st.none(), st.just("contoso.lab"))
USERS = st.one_of(st.none(), st.just("relay@contoso.lab"))


@st.composite
def connectors(draw: Any) -> dict[str, Any]:
    """A connector state as plain values, shared by both sides, as Exchange stores it: a
    DNS-routed connector keeps no smart hosts, mechanism or credential."""
    state = {
        "smart_hosts": tuple(draw(HOSTS)),
        "dns_routing_enabled": draw(st.booleans()),
        "smart_host_auth_mechanism": draw(MECHANISMS),
        "credential_user": draw(USERS),
        "port": draw(st.sampled_from([25, 587])),
        "require_tls": draw(st.booleans()),
        "ignore_starttls": draw(st.booleans()),
        "tls_auth_level": draw(LEVELS),
        "tls_domain": draw(DOMAINS),
        "address_spaces": ("SMTP:*;1",),
    }
    if state["dns_routing_enabled"]:
        state.update(smart_hosts=(), smart_host_auth_mechanism=AuthMechanism.NONE)
        state.update(credential_user=None)
    return state


CHANGE_VALUES: dict[str, Any] = {
    "smart_hosts": HOSTS.map(tuple),
    "dns_routing_enabled": st.booleans(),
    "smart_host_auth_mechanism": MECHANISMS,
    "credential_user": USERS,
    "port": st.sampled_from([25, 587, 2525]),
    "require_tls": st.booleans(),
    "ignore_starttls": st.booleans(),
    "tls_auth_level": LEVELS,
    "tls_domain": DOMAINS,
    "address_spaces": st.sampled_from([(), ("SMTP:*;1",)]),
}


@st.composite
def changes(draw: Any) -> dict[str, Any]:
    keys = draw(st.sets(st.sampled_from(sorted(CHANGE_VALUES)), min_size=1, max_size=4))
    return {key: draw(CHANGE_VALUES[key]) for key in sorted(keys)}


def tool_connector(state: dict[str, Any]) -> SendConnector:
    """As the tool reads it: Exchange says only whether a credential is set."""
    values = {k: v for k, v in state.items() if k != "credential_user"}
    set_ = state["credential_user"] is not None
    values["credential"] = CredentialState.SET if set_ else CredentialState.NOT_SET
    return SendConnector(name="Outbound", **values)


def lab_connector(state: dict[str, Any]) -> Connector:
    values = {k: v for k, v in state.items() if k != "credential_user"}
    values["smart_hosts"] = list(values["smart_hosts"])
    values["address_spaces"] = list(values["address_spaces"])
    values["smart_host_auth_mechanism"] = str(values["smart_host_auth_mechanism"])
    level = values["tls_auth_level"]
    values["tls_auth_level"] = None if level is None else str(level)
    user = state["credential_user"]
    values["credential"] = LabCredential(user, "s3cret-Pa55") if user else None
    return Connector(name="Outbound", guid="0", source_transport_servers=["EX01"], **values)


def tool_step(change: dict[str, Any]) -> Step:
    params = [Parameter("Identity", "Outbound")]
    for key, value in change.items():
        if key == "credential_user":
            value = None if value is None else CredentialRef(value, "remediate:relay", value)
            key = "credential"
        params.append(Parameter(PROPERTY_NAMES[key], value))
    return Step("Set-SendConnector", tuple(params), StepKind.CHANGE, "test", "set.ps1.j2")


def lab_changes(change: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in change.items():
        if key == "credential_user":
            out["credential"] = LabCredential(value, "s3cret-Pa55") if value else None
        elif key in ("smart_hosts", "address_spaces"):
            out[key] = list(value)
        elif key in ("smart_host_auth_mechanism", "tls_auth_level"):
            out[key] = None if value is None else str(value)
        else:
            out[key] = value
    return out


def lab_verdict(state: dict[str, Any], change: dict[str, Any]) -> Connector | None:
    """The connector as the lab saves it, or None when the lab refuses the change."""
    try:
        return rules.apply_changes(lab_connector(state), lab_changes(change))
    except rules.RuleViolation:
        return None


def tool_refuses(state: dict[str, Any], change: dict[str, Any]) -> bool:
    try:
        check([tool_step(change)], tool_connector(state))
    except PreflightError:
        return True
    return False


def wipes_credential_silently(before: Connector, after: Connector, change: dict[str, Any]) -> bool:
    """What Exchange mangles without an error: a stored credential wiped that the change
    did not ask to drop, or a mechanism sent and not kept (reset to None by DNS routing)."""
    intended = change.get("smart_host_auth_mechanism") is AuthMechanism.NONE
    wiped = (
        before.credential is not None
        and after.credential is None
        and not intended
        and ("credential_user" not in change)
    )
    sent = change.get("smart_host_auth_mechanism")
    reset = sent is not None and str(sent) != after.smart_host_auth_mechanism
    return wiped or reset


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(state=connectors(), change=changes())
def test_the_tool_refuses_whatever_the_lab_refuses(state, change) -> None:
    saved = lab_verdict(state, {})
    if saved is None:
        # Already broken as stored: covered by test_broken_connectors_below.
        return
    after = lab_verdict(state, change)
    if after is None or wipes_credential_silently(lab_connector(state), after, change):
        assert tool_refuses(state, change), (state, change)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(state=connectors(), change=changes())
def test_broken_connectors_below(state, change) -> None:
    """A connector Exchange would not save as it is refuses every change that leaves it
    broken; the tool must not send such a change either."""
    if lab_verdict(state, {}) is not None:
        return
    if lab_verdict(state, change) is None:
        assert tool_refuses(state, change), (state, change)


def test_the_comparison_sees_both_outcomes() -> None:
    """Guard against a vacuous property: the drawn cases include both verdicts."""
    accepted = {"dns_routing_enabled": False, "smart_hosts": ("relay.contoso.lab",)}
    state = {
        "port": 25,
        "address_spaces": ("SMTP:*;1",),
        "dns_routing_enabled": True,
        "credential_user": None,
        "smart_host_auth_mechanism": AuthMechanism.NONE,
        "smart_hosts": (),
        "require_tls": False,
        "ignore_starttls": False,
        "tls_auth_level": None,
        "tls_domain": None,
    }
    assert lab_verdict(state, accepted) is not None
    assert not tool_refuses(state, accepted)
    refused = {"smart_host_auth_mechanism": AuthMechanism.BASIC_AUTH}
    assert lab_verdict(state, refused) is None
    assert tool_refuses(state, refused)


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(Connector)])
def test_every_lab_rule_field_is_known_to_the_tool_or_not_settable(field: str) -> None:
    """The lab's connector and the tool's model name the same properties."""
    lab_only = {"guid", "credential", "comment", "when_changed", "name"}
    # DomainSecureEnabled came to the lab with issue 11 (its rules in rules.py); the tool's
    # model names it on the tool side of that issue. Empty once it does.
    pending_in_tool = {"domain_secure_enabled"} - set(PROPERTY_NAMES)
    assert field in lab_only or field in PROPERTY_NAMES or field in pending_in_tool
