"""Each pre-flight rule: one change accepted and one refused (plus offline behaviour)."""

from __future__ import annotations

import pytest

from remediate.core import preflight
from remediate.core.errors import PreflightError
from remediate.core.exchange import AuthMechanism, CredentialState, SendConnector, TlsAuthLevel
from remediate.core.plan import CredentialRef, Parameter, ParamValue, Step, StepKind

CRED = CredentialRef("relay@contoso.com", "remediate:relay", "relay@contoso.com")
DNS_ROUTED = SendConnector(name="Internet Mail")
SMART = SendConnector(
    name="Outbound to Relay",
    smart_hosts=("smtp.relay.example",),
    dns_routing_enabled=False,
    smart_host_auth_mechanism=AuthMechanism.BASIC_AUTH,
    credential=CredentialState.SET,
    port=587,
)
SMART_NO_AUTH = SMART.replace(
    smart_host_auth_mechanism=AuthMechanism.NONE, credential=CredentialState.NOT_SET
)


def step(**params: ParamValue) -> Step:
    parameters = (
        Parameter("Identity", "C"),
        *(Parameter(k, v) for k, v in params.items()),
        Parameter("Confirm", False),
    )
    return Step("Set-SendConnector", parameters, StepKind.CHANGE, "test", "x.ps1.j2")


def refused(current: SendConnector | None, *steps: Step) -> PreflightError:
    with pytest.raises(PreflightError) as info:
        preflight.check(steps, current)
    err = info.value
    assert str(err).startswith(f"{err.parameter}: ")
    assert "\n" not in str(err)
    return err


def accepted(current: SendConnector | None, *steps: Step) -> preflight.Checked:
    return preflight.check(steps, current)


def test_mechanism_needs_smart_host_routing() -> None:
    err = refused(
        DNS_ROUTED,
        step(SmartHostAuthMechanism=AuthMechanism.BASIC_AUTH, AuthenticationCredential=CRED),
    )
    assert (err.rule, err.parameter) == ("mechanism-needs-smart-hosts", "SmartHostAuthMechanism")
    assert "-DNSRoutingEnabled $false" in str(err)
    after = accepted(
        DNS_ROUTED,
        step(
            SmartHosts=("smtp.relay.example",),
            DNSRoutingEnabled=False,
            SmartHostAuthMechanism=AuthMechanism.BASIC_AUTH,
            AuthenticationCredential=CRED,
        ),
    ).after
    assert after is not None and after.smart_host_auth_mechanism is AuthMechanism.BASIC_AUTH


def test_steps_are_checked_in_order() -> None:
    routing = step(SmartHosts=("smtp.relay.example",), DNSRoutingEnabled=False)
    auth = step(SmartHostAuthMechanism=AuthMechanism.BASIC_AUTH, AuthenticationCredential=CRED)
    assert refused(DNS_ROUTED, auth, routing).rule == "mechanism-needs-smart-hosts"
    assert accepted(DNS_ROUTED, routing, auth).after.credential is CredentialState.SET


def test_smart_hosts_need_dns_routing_off() -> None:
    err = refused(DNS_ROUTED, step(SmartHosts=("smtp.relay.example",)))
    assert (err.rule, err.parameter) == ("smart-hosts-need-routing-off", "SmartHosts")
    accepted(DNS_ROUTED, step(SmartHosts=("smtp.relay.example",), DNSRoutingEnabled=False))
    accepted(SMART, step(SmartHosts=("other.relay.example",)))


def test_dns_routing_off_needs_smart_hosts() -> None:
    err = refused(DNS_ROUTED, step(DNSRoutingEnabled=False))
    assert (err.rule, err.parameter) == ("smart-host-not-set", "SmartHosts")
    assert "SmartHostNotSet" in str(err)
    accepted(SMART, step(DNSRoutingEnabled=False))


def test_basic_auth_needs_a_credential() -> None:
    err = refused(SMART_NO_AUTH, step(SmartHostAuthMechanism=AuthMechanism.BASIC_AUTH_REQUIRE_TLS))
    assert (err.rule, err.parameter) == ("credential-not-set", "AuthenticationCredential")
    assert "AuthenticationCredentialNotSet" in str(err) and "--username" in str(err)
    accepted(
        SMART_NO_AUTH,
        step(
            SmartHostAuthMechanism=AuthMechanism.BASIC_AUTH_REQUIRE_TLS,
            AuthenticationCredential=CRED,
        ),
    )
    # a connector that already holds one keeps it
    accepted(SMART, step(SmartHostAuthMechanism=AuthMechanism.BASIC_AUTH_REQUIRE_TLS))
    # mechanisms without a credential
    accepted(SMART_NO_AUTH, step(SmartHostAuthMechanism=AuthMechanism.EXTERNAL_AUTHORITATIVE))


def test_require_tls_conflicts_with_ignore_starttls() -> None:
    ignoring = SMART.replace(ignore_starttls=True)
    err = refused(ignoring, step(RequireTLS=True))
    assert (err.rule, err.parameter) == ("require-tls-ignore-starttls", "RequireTLS")
    accepted(ignoring, step(RequireTLS=True, IgnoreSTARTTLS=False))


def test_tls_auth_level_needs_require_tls() -> None:
    err = refused(SMART, step(TlsAuthLevel=TlsAuthLevel.CERTIFICATE_VALIDATION))
    assert (err.rule, err.parameter) == ("tls-level-needs-require-tls", "TlsAuthLevel")
    assert "--require-tls" in str(err)
    accepted(SMART, step(RequireTLS=True, TlsAuthLevel=TlsAuthLevel.CERTIFICATE_VALIDATION))


def test_tls_domain_needs_domain_validation() -> None:
    err = refused(
        SMART,
        step(
            RequireTLS=True,
            TlsAuthLevel=TlsAuthLevel.CERTIFICATE_VALIDATION,
            TlsDomain="relay.example",
        ),
    )
    assert (err.rule, err.parameter) == ("tls-domain-needs-domain-validation", "TlsDomain")
    accepted(
        SMART,
        step(
            RequireTLS=True, TlsAuthLevel=TlsAuthLevel.DOMAIN_VALIDATION, TlsDomain="relay.example"
        ),
    )


def test_domain_validation_on_smart_hosts_needs_tls_domain() -> None:
    err = refused(SMART, step(RequireTLS=True, TlsAuthLevel=TlsAuthLevel.DOMAIN_VALIDATION))
    assert (err.rule, err.parameter) == ("domain-validation-needs-tls-domain", "TlsDomain")
    accepted(
        SMART.replace(tls_domain="relay.example"),
        step(RequireTLS=True, TlsAuthLevel=TlsAuthLevel.DOMAIN_VALIDATION),
    )


def test_address_space_required() -> None:
    err = refused(SMART, step(AddressSpaces=()))
    assert (err.rule, err.parameter) == ("address-space-required", "AddressSpaces")
    accepted(SMART, step(AddressSpaces=("SMTP:contoso.com;1",)))


def test_dns_routing_with_a_mechanism_is_refused_and_with_none_keeps_the_credential() -> None:
    err = refused(SMART, step(DNSRoutingEnabled=True))
    assert (err.rule, err.parameter) == ("dns-routing-wipes-credential", "DNSRoutingEnabled")
    assert "credential" in str(err)
    after = accepted(
        SMART, step(DNSRoutingEnabled=True, SmartHostAuthMechanism=AuthMechanism.NONE)
    ).after
    assert after is not None
    # exchange-notes.md, "Transport behaviour": switching to DNS routing clears the
    # credential only when the mechanism is not None; sent with None, the credential stays
    assert (after.smart_hosts, after.credential, after.smart_host_auth_mechanism) == (
        (),
        CredentialState.SET,
        AuthMechanism.NONE,
    )
    # already DNS-routed: nothing to wipe
    accepted(DNS_ROUTED, step(DNSRoutingEnabled=True))


def test_empty_or_long_password_is_refused() -> None:
    with pytest.raises(PreflightError, match="password is empty") as info:
        preflight.check_password("")
    assert info.value.rule == "empty-password"
    with pytest.raises(PreflightError, match="256"):
        preflight.check_password("p" * 257)
    preflight.check_password("p" * 256)


def test_password_never_in_message() -> None:
    secret = "S3cr3t-" + "x" * 300
    with pytest.raises(PreflightError) as info:
        preflight.check_password(secret)
    assert secret not in str(info.value) and "S3cr3t" not in str(info.value)


def test_user_name_rules() -> None:
    for bad, rule_text in (("", "empty"), ("u" * 257, "257"), ("a\nb", "control")):
        with pytest.raises(PreflightError, match=rule_text):
            preflight.check_username(bad)
    assert preflight.check_username("u" * 256) == "u" * 256
    long_cred = CredentialRef("u" * 257, "remediate:relay", "x")
    assert refused(SMART, step(AuthenticationCredential=long_cred)).rule == "user-name"
    accepted(SMART, step(AuthenticationCredential=CRED))


def test_unknown_parameter_is_refused() -> None:
    assert refused(SMART, step(NoSuchThing=1)).rule == "unknown-parameter"


def test_reads_are_ignored() -> None:
    read = Step("Get-SendConnector", (Parameter("Identity", "C"),), StepKind.READ, "r", "g")
    assert accepted(SMART, read).after == SMART


def test_offline_checks_the_change_alone_and_notes_the_rest() -> None:
    # refused even without state: the step itself is contradictory
    assert (
        refused(None, step(TlsAuthLevel=TlsAuthLevel.CERTIFICATE_VALIDATION, RequireTLS=False)).rule
        == "tls-level-needs-require-tls"
    )
    assert refused(None, step(DNSRoutingEnabled=False, SmartHosts=())).rule == (
        "smart-host-not-set"
    )
    checked = accepted(None, step(SmartHostAuthMechanism=AuthMechanism.BASIC_AUTH))
    assert checked.after is None
    assert any("credential" in n for n in checked.notes)
    assert any("smart hosts" in n for n in checked.notes)


def test_credential_on_a_dns_routed_connector_is_refused() -> None:
    err = refused(DNS_ROUTED, step(AuthenticationCredential=CRED))
    assert (err.rule, err.parameter) == ("credential-needs-smart-hosts", "AuthenticationCredential")
    accepted(SMART_NO_AUTH, step(AuthenticationCredential=CRED))


def test_problems_of_a_connector_as_it_stands() -> None:
    assert preflight.problems(SMART) == ()
    assert preflight.problems(DNS_ROUTED) == ()
    wiped = SMART.replace(
        smart_host_auth_mechanism=AuthMechanism.BASIC_AUTH_REQUIRE_TLS,
        credential=CredentialState.NOT_SET,
    )
    assert [p.rule for p in preflight.problems(wiped)] == ["credential-not-set"]
    bad = wiped.replace(tls_auth_level=TlsAuthLevel.ENCRYPTION_ONLY, address_spaces=())
    assert [p.rule for p in preflight.problems(bad)] == [
        "credential-not-set",
        "tls-level-needs-require-tls",
        "address-space-required",
    ]
