"""Plans from playbooks + fix options: offline, against a read connector, and undo."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remediate.core import preflight
from remediate.core.errors import OptionError, PreflightError, RemediateError, UsageError
from remediate.core.exchange import (
    AuthMechanism,
    CredentialState,
    ProtocolLoggingLevel,
    SendConnector,
    TlsAuthLevel,
)
from remediate.core.opath import connector_queue_filter, opath_literal
from remediate.core.options import FixOptions
from remediate.core.plan import SWITCH, CredentialRef, Parameter, StepKind
from remediate.core.planner import build_plan, relay_credential
from remediate.core.playbooks import find
from remediate.core.undo import undo_plan
from remediate.ui.fix_arguments import add_fix_arguments, fix_options_from_args

AUTH = find("2016")
CONN = find("2002")
NAME = "Outbound to Relay"
USER = "relay@contoso.com"
NEWCOMER = FixOptions(
    connector=NAME,
    mechanism=AuthMechanism.BASIC_AUTH_REQUIRE_TLS,
    username=USER,
    smart_hosts=("smtp.relay.example",),
    port=587,
)
# the lab's 2016 scenario: BasicAuthRequireTLS with its credential wiped
BROKEN = SendConnector(
    name=NAME,
    guid="6f1c0c1e-0000-4000-8000-000000000001",
    smart_hosts=("smtp.relay.example",),
    dns_routing_enabled=False,
    smart_host_auth_mechanism=AuthMechanism.BASIC_AUTH_REQUIRE_TLS,
    port=587,
)


def params(step) -> list[tuple[str, object]]:
    return [(p.name, p.value) for p in step.parameters]


def test_offline_plan_for_the_newcomer() -> None:
    plan = build_plan(AUTH, NEWCOMER)
    assert (plan.playbook, plan.event_id, plan.connector) == (AUTH.id, 2016, NAME)
    assert [s.cmdlet for s in plan.steps] == [
        "Get-SendConnector",
        "Set-SendConnector",
        "Set-SendConnector",
        "Get-SendConnector",
        "Retry-Queue",
        "Get-Queue",
    ]
    routing, auth = plan.steps[1], plan.steps[2]
    assert params(routing) == [
        ("Identity", NAME),
        ("SmartHosts", ("smtp.relay.example",)),
        ("DNSRoutingEnabled", False),
        ("Port", 587),
        ("Confirm", False),
    ]
    cred = CredentialRef(USER, "remediate:relay", USER)
    assert params(auth) == [
        ("Identity", NAME),
        ("SmartHostAuthMechanism", AuthMechanism.BASIC_AUTH_REQUIRE_TLS),
        ("AuthenticationCredential", cred),
        ("Confirm", False),
    ]
    assert plan.credentials == (cred,)
    assert [s.replaces for s in plan.changes] == [None, None, ()]  # Retry-Queue: nothing to undo
    assert all(s.reason and s.action for s in plan.steps)
    assert any("without reading the connector" in n for n in plan.notes)
    queue = plan.steps[5]
    assert params(queue) == [
        ("Include", "SmartHostConnectorDelivery"),
        ("Filter", "NextHopDomain -eq 'smtp.relay.example'"),
    ]


def test_what_if_marks_every_change_and_no_read() -> None:
    plan = build_plan(AUTH, NEWCOMER, what_if=True)
    assert plan.what_if
    for step in plan.steps:
        assert step.has_param("WhatIf") == step.is_change
        assert step.has_param("Confirm") == step.is_change
    assert plan.steps[1].param("WhatIf") is SWITCH


def test_mechanism_offline_without_smart_hosts_turns_dns_routing_off_in_the_same_step() -> None:
    plan = build_plan(
        AUTH, FixOptions(connector=NAME, mechanism=AuthMechanism.BASIC_AUTH, username=USER)
    )
    (auth,) = [s for s in plan.changes if s.cmdlet == "Set-SendConnector"]
    assert [p.name for p in auth.parameters][:3] == [
        "Identity",
        "DNSRoutingEnabled",
        "SmartHostAuthMechanism",
    ]
    assert any("queue" in n for n in plan.notes)  # no smart host known: queue steps left out
    assert not any(s.cmdlet == "Retry-Queue" for s in plan.steps)


def test_against_current_state_only_differences_are_sent() -> None:
    plan = build_plan(AUTH, NEWCOMER, current=BROKEN)
    changes = [s for s in plan.changes if s.cmdlet == "Set-SendConnector"]
    assert len(changes) == 1
    assert params(changes[0]) == [
        ("Identity", NAME),
        ("AuthenticationCredential", relay_credential(USER)),
        ("Confirm", False),
    ]
    assert changes[0].replaces == (Parameter("AuthenticationCredential", CredentialState.NOT_SET),)
    guid_filter = f"NextHopConnector -eq '{BROKEN.guid}'"
    assert plan.steps[1].param("Filter") == guid_filter
    assert plan.steps[-1].param("Filter") == guid_filter


def test_replaces_holds_current_values() -> None:
    current = BROKEN.replace(credential=CredentialState.SET, port=25, require_tls=False)
    options = FixOptions(
        connector=NAME,
        port=587,
        require_tls=True,
        tls_auth_level=TlsAuthLevel.CERTIFICATE_VALIDATION,
    )
    plan = build_plan(AUTH, options, current=current)
    routing, tls = [s for s in plan.changes if s.cmdlet == "Set-SendConnector"]
    assert routing.replaces == (Parameter("Port", 25),)
    assert tls.replaces == (Parameter("RequireTLS", False), Parameter("TlsAuthLevel", None))


def test_second_apply_is_no_change() -> None:
    first = build_plan(AUTH, NEWCOMER, current=SendConnector(name=NAME, guid="g"))
    after = preflight.check(first.changes, SendConnector(name=NAME, guid="g")).after
    assert after is not None and after.credential is CredentialState.SET
    second = build_plan(AUTH, NEWCOMER, current=after)
    assert second.changes == ()
    assert "no change: the connector already has these settings" in second.notes
    assert [s.kind for s in second.steps] == [StepKind.READ, StepKind.READ]


@pytest.mark.parametrize(
    ("have", "reenter", "mechanism", "sent"),
    [
        (CredentialState.NOT_SET, False, None, True),
        (CredentialState.UNKNOWN, False, None, True),
        (CredentialState.SET, False, None, False),  # cannot be compared: left, with a note
        (CredentialState.SET, True, None, True),
        (CredentialState.SET, False, AuthMechanism.BASIC_AUTH, True),  # a new mechanism
    ],
)
def test_a_credential_is_never_compared_only_reentered(have, reenter, mechanism, sent) -> None:
    """exchange-notes.md: Exchange returns only whether a credential is set, never its user."""
    current = BROKEN.replace(credential=have)
    options = FixOptions(
        connector=NAME, username=USER, reenter_credential=reenter, mechanism=mechanism, port=25
    )
    plan = build_plan(AUTH, options, current=current)
    assert (plan.credentials == (relay_credential(USER),)) is sent
    assert any("cannot be compared" in n for n in plan.notes) is (not sent)


def test_reenter_needs_a_user_name_as_exchange_never_returns_one() -> None:
    options = FixOptions(connector=NAME, reenter_credential=True)
    with pytest.raises(UsageError, match="--reenter-credential: give --username"):
        build_plan(AUTH, options, current=BROKEN.replace(credential=CredentialState.SET))
    with pytest.raises(UsageError, match="--reenter-credential"):
        build_plan(AUTH, options)


def test_credential_factory_is_used() -> None:
    def factory(user: str) -> CredentialRef:
        return CredentialRef(user, "custom", "k", purpose="why")

    plan = build_plan(AUTH, NEWCOMER, credential_ref_factory=factory)
    assert plan.credentials == (CredentialRef(USER, "custom", "k", purpose="why"),)


def test_preflight_refusal_reaches_the_caller() -> None:
    dns = SendConnector(name=NAME)
    options = FixOptions(connector=NAME, mechanism=AuthMechanism.BASIC_AUTH, username=USER)
    with pytest.raises(PreflightError, match="SmartHostNotSet"):
        build_plan(AUTH, options, current=dns)


def test_2002_plan() -> None:
    options = FixOptions(
        connector="Outbound to Partner",
        smart_hosts=("mx.partner.example",),
        port=25,
        enable=True,
        protocol_logging=ProtocolLoggingLevel.VERBOSE,
    )
    plan = build_plan(CONN, options)
    sets = [s for s in plan.changes if s.cmdlet == "Set-SendConnector"]
    assert [s.template for s in sets] == [
        "set_send_connector_routing.ps1.j2",
        "set_send_connector_state.ps1.j2",
    ]
    assert params(sets[1])[1:3] == [
        ("Enabled", True),
        ("ProtocolLoggingLevel", ProtocolLoggingLevel.VERBOSE),
    ]
    # exchange-notes.md: a change reaches the transport only after a delay, so logging turned
    # off in the same plan would log nothing; it stays on and the script says why
    assert plan.steps[-1].cmdlet == "Get-Queue"
    assert any("verbose protocol logging stays on" in n for n in plan.notes)


def test_verbose_logging_already_on_is_left_alone() -> None:
    current = SendConnector(
        name="Outbound to Partner",
        guid="6f1c0c1e-0000-4000-8000-000000000002",
        smart_hosts=("mx.partner.example",),
        dns_routing_enabled=False,
        port=2525,
        protocol_logging_level=ProtocolLoggingLevel.VERBOSE,
    )
    plan = build_plan(
        CONN,
        FixOptions(
            connector="Outbound to Partner", port=25, protocol_logging=ProtocolLoggingLevel.VERBOSE
        ),
        current=current,
    )
    assert [p.name for s in plan.changes for p in s.parameters].count("ProtocolLoggingLevel") == 0


def test_options_a_playbook_does_not_take_are_refused() -> None:
    with pytest.raises(UsageError, match="--mechanism: not an option of playbook 2002"):
        build_plan(CONN, FixOptions(connector=NAME, mechanism=AuthMechanism.NONE))
    with pytest.raises(UsageError, match="nothing to change"):
        build_plan(CONN, FixOptions(connector=NAME))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": 65536}, "--port"),
        ({"port": -1}, "--port"),
        ({"smart_hosts": ("bad host",)}, "--smart-host"),
        ({"smart_hosts": ("-x.example",)}, "--smart-host"),
        ({"smart_hosts": ("10.0.0.300",)}, "--smart-host"),
        ({"smart_hosts": ("a.example", "A.example")}, "--smart-host"),
        ({"username": "u" * 257}, "--username"),
        ({"username": " "}, "--username"),
        ({"connector": "a\nb"}, "--connector"),
        ({"connector": ""}, "--connector"),
        ({"tls_domain": "10.0.0.1"}, "--tls-domain"),
    ],
)
def test_fix_options_validation(kwargs, message) -> None:
    base = {"connector": NAME, **kwargs}
    with pytest.raises(UsageError, match=message):
        FixOptions(**base)


def test_fix_options_accept_good_values() -> None:
    options = FixOptions(
        connector=NAME,
        smart_hosts=("smtp.relay.example", "10.0.0.1", "::1", "relay."),
        port=0,
        username="u" * 256,
        tls_domain="*.relay.example",
    )
    assert options.given() == {"smart_hosts", "port", "username", "tls_domain"}


def _parser(playbook_id: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connector")
    add_fix_arguments(parser, playbook_id)
    return parser


def test_fix_options_from_args() -> None:
    args = _parser().parse_args(
        [
            "--connector",
            NAME,
            "--mechanism",
            "basicauthrequiretls",
            "--username",
            USER,
            "--smart-host",
            "a.example",
            "--smart-host",
            "b.example",
            "--port",
            "587",
            "--no-require-tls",
            "--tls-auth-level",
            "EncryptionOnly",
            "--enable",
            "--protocol-logging",
            "verbose",
            "--reenter-credential",
        ]
    )
    options = fix_options_from_args(args)
    assert options == FixOptions(
        connector=NAME,
        mechanism=AuthMechanism.BASIC_AUTH_REQUIRE_TLS,
        username=USER,
        smart_hosts=("a.example", "b.example"),
        port=587,
        require_tls=False,
        tls_auth_level=TlsAuthLevel.ENCRYPTION_ONLY,
        enable=True,
        protocol_logging=ProtocolLoggingLevel.VERBOSE,
        reenter_credential=True,
    )
    assert fix_options_from_args(_parser().parse_args([]), connector="X").given() == frozenset()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--mechanism", "Kerberos"], "--mechanism: 'Kerberos' is not one of"),
        (["--port", "abc"], "--port"),
        (["--tls-auth-level", "Strict"], "--tls-auth-level"),
        ([], "--connector"),
    ],
)
def test_fix_options_from_bad_args(argv, message) -> None:
    with pytest.raises(UsageError, match=message):
        fix_options_from_args(_parser().parse_args([*argv, "--connector", NAME] if argv else []))


def test_add_fix_arguments_for_one_playbook() -> None:
    parser = _parser("2002")
    assert parser.parse_args(["--enable", "--port", "25"]).enable is True
    with pytest.raises(SystemExit):
        parser.parse_args(["--mechanism", "BasicAuth"])


def test_queue_filter() -> None:
    assert opath_literal("a'b") == "'a''b'"
    assert connector_queue_filter(None, None) is None
    assert connector_queue_filter(None, ("a", "b")) == "NextHopDomain -eq 'a,b'"
    assert connector_queue_filter(BROKEN, ("a",)) == f"NextHopConnector -eq '{BROKEN.guid}'"


# --- undo ----------------------------------------------------------------------------------


def _after(plan, before):
    return preflight.check(plan.changes, before).after


def test_undo_back_to_dns_routing_restores_all_but_the_credential() -> None:
    before = SendConnector(name=NAME, guid="g")
    applied = build_plan(AUTH, NEWCOMER, current=before)
    undo = undo_plan(before, applied)
    assert [s.cmdlet for s in undo.steps] == [
        "Set-SendConnector",
        "Set-SendConnector",
        "Get-SendConnector",
    ]
    restored = preflight.check(undo.changes, _after(applied, before)).after
    assert restored == before.replace(credential=CredentialState.SET)
    routing_undo = undo.steps[1]
    assert routing_undo.param("DNSRoutingEnabled") is True
    assert not routing_undo.has_param("SmartHosts")
    assert routing_undo.replaces == (
        Parameter("DNSRoutingEnabled", False),
        Parameter("Port", 587),
        Parameter("SmartHostAuthMechanism", AuthMechanism.NONE),  # the first undo step reset it
    )
    assert any("drop the smart hosts" in n for n in undo.notes)
    # sent with SmartHostAuthMechanism None, DNS routing keeps the credential (exchange-notes)
    assert any("leaves the one" in n for n in undo.notes)


def test_undo_cannot_restore_a_credential_and_says_so() -> None:
    before = BROKEN.replace(credential=CredentialState.SET, port=25)
    options = FixOptions(connector=NAME, username=USER, reenter_credential=True, port=587)
    applied = build_plan(AUTH, options, current=before)
    undo = undo_plan(before, applied, what_if=True)
    (restore,) = undo.changes
    assert params(restore) == [
        ("Identity", NAME),
        ("Port", 25),
        ("Confirm", False),
        ("WhatIf", SWITCH),
    ]
    assert not undo.credentials
    assert any("cannot be restored" in n and "--reenter-credential" in n for n in undo.notes)
    restored = preflight.check(undo.changes, _after(applied, before)).after
    assert restored == before.replace(credential=CredentialState.SET)


def test_undo_does_not_restore_a_broken_state() -> None:
    applied = build_plan(
        AUTH, FixOptions(connector=NAME, mechanism=AuthMechanism.NONE, port=25), current=BROKEN
    )
    undo = undo_plan(BROKEN, applied)
    assert [params(s) for s in undo.changes] == [
        [("Identity", NAME), ("Port", 587), ("Confirm", False)]
    ]
    assert any(
        n.startswith("not restored") and "AuthenticationCredentialNotSet" in n for n in undo.notes
    )


def test_undo_when_there_was_no_credential() -> None:
    applied = build_plan(AUTH, NEWCOMER, current=BROKEN)
    undo = undo_plan(BROKEN, applied)
    assert undo.changes == ()
    assert any("had no credential before" in n for n in undo.notes)
    assert any("nothing to undo" in n for n in undo.notes)


# --- properties ---------------------------------------------------------------------------

HOSTS = st.sampled_from(["smtp.relay.example", "10.0.0.5", "relay2.example"])
CONNECTORS = st.builds(
    lambda hosts, mech, user, port, tls, level, domain, guid: SendConnector(
        name=NAME,
        guid=guid,
        smart_hosts=tuple(hosts),
        dns_routing_enabled=not hosts,
        smart_host_auth_mechanism=mech if hosts else AuthMechanism.NONE,
        credential=CredentialState.SET if hosts and user else CredentialState.NOT_SET,
        port=port,
        require_tls=tls or level is not None,
        tls_auth_level=level,
        tls_domain=domain if level is TlsAuthLevel.DOMAIN_VALIDATION else None,
    ),
    st.lists(HOSTS, unique=True, max_size=2),
    st.sampled_from(list(AuthMechanism)),
    st.sampled_from([None, USER, "other@contoso.com"]),
    st.sampled_from([25, 587]),
    st.booleans(),
    st.sampled_from([None, *TlsAuthLevel]),
    st.just("relay.example"),
    st.sampled_from(["", "guid-1"]),
)
OPTIONS = st.builds(
    FixOptions,
    connector=st.just(NAME),
    mechanism=st.sampled_from([None, *AuthMechanism]),
    username=st.sampled_from([None, USER, "new@contoso.com"]),
    smart_hosts=st.lists(HOSTS, unique=True, max_size=2).map(tuple),
    port=st.sampled_from([None, 25, 587]),
    require_tls=st.sampled_from([None, True, False]),
    tls_auth_level=st.sampled_from([None, *TlsAuthLevel]),
    tls_domain=st.sampled_from([None, "relay.example"]),
)


@settings(max_examples=300, deadline=None)
@given(CONNECTORS, OPTIONS)
def test_applying_a_plan_twice_changes_nothing_the_second_time(current, options) -> None:
    try:
        first = build_plan(AUTH, options, current=current)
    except RemediateError as exc:
        assert exc.exit_code == 2
        return
    after = preflight.check(first.changes, current).after
    assert after is not None
    second = build_plan(AUTH, options, current=after)
    assert second.changes == ()
    if first.changes:
        undo = undo_plan(current, first)
        restored = preflight.check(undo.changes, after).after
        if any(n.startswith("not restored") for n in undo.notes):
            assert restored != current
            return
        # a credential is never restored: the connector keeps the one the plan sent (Exchange
        # drops it only when a mechanism other than None meets DNS routing, which undo avoids)
        assert restored == current.replace(credential=after.credential)


def test_leaving_domain_validation_clears_tls_domain() -> None:
    current = BROKEN.replace(
        credential=CredentialState.SET,
        require_tls=True,
        tls_auth_level=TlsAuthLevel.DOMAIN_VALIDATION,
        tls_domain="relay.example",
    )
    options = FixOptions(connector=NAME, tls_auth_level=TlsAuthLevel.CERTIFICATE_VALIDATION)
    plan = build_plan(AUTH, options, current=current)
    (tls,) = [s for s in plan.changes if s.cmdlet == "Set-SendConnector"]
    assert params(tls)[1:3] == [
        ("TlsAuthLevel", TlsAuthLevel.CERTIFICATE_VALIDATION),
        ("TlsDomain", None),
    ]
    assert tls.replaces == (
        Parameter("TlsAuthLevel", TlsAuthLevel.DOMAIN_VALIDATION),
        Parameter("TlsDomain", "relay.example"),
    )


def test_a_connector_broken_as_stored_gets_its_repair_in_one_call() -> None:
    """Exchange validates the whole connector on each Set-SendConnector: a port change sent
    before the credential would be refused, so both go in one call, with a note."""
    plan = build_plan(AUTH, FixOptions(connector=NAME, username=USER, port=2525), current=BROKEN)
    (change,) = [s for s in plan.changes if s.cmdlet == "Set-SendConnector"]
    assert [n for n, _ in params(change)] == [
        "Identity",
        "Port",
        "AuthenticationCredential",
        "Confirm",
    ]
    assert [p.name for p in change.replaces] == ["Port", "AuthenticationCredential"]
    assert any("invalid as stored" in n for n in plan.notes)


def test_a_broken_connector_still_refuses_a_change_that_does_not_repair_it() -> None:
    with pytest.raises(PreflightError) as refused:
        build_plan(AUTH, FixOptions(connector=NAME, port=2525), current=BROKEN)
    assert refused.value.rule == "credential-not-set"
    assert "whole connector" in (refused.value.hint or "")


def test_bracketed_and_bare_ip_smart_hosts_are_one_host() -> None:
    """exchange-notes.md: Exchange writes an IP smart host bracketed ([10.0.0.5])."""
    current = BROKEN.replace(smart_hosts=("[10.0.0.5]",), credential=CredentialState.SET)
    for host in ("10.0.0.5", "[10.0.0.5]"):
        plan = build_plan(CONN, FixOptions(connector=NAME, smart_hosts=(host,)), current=current)
        assert plan.changes == (), host
    with pytest.raises(UsageError, match="same smart host is given twice"):
        FixOptions(connector=NAME, smart_hosts=("10.0.0.5", "[10.0.0.5]"))


def test_edge_sync_connectors_get_force_for_smart_host_changes() -> None:
    """exchange-notes.md: EdgeSync connectors ask ShouldContinue; only -Force answers it."""
    edge = BROKEN.replace(
        name="EdgeSync - Default-First-Site-Name to Internet", credential=CredentialState.SET
    )
    options = FixOptions(connector=edge.name, smart_hosts=("relay.example",), port=25)
    (routing,) = [s for s in build_plan(CONN, options, current=edge).changes if s.has_param("Port")]
    assert routing.has_param("Force") and routing.param("Force") is SWITCH
    other = FixOptions(connector=NAME, smart_hosts=("relay.example",))
    plain = BROKEN.replace(credential=CredentialState.SET)
    assert not any(s.has_param("Force") for s in build_plan(CONN, other, current=plain).changes)


@pytest.mark.parametrize(
    ("options", "flag", "problem"),
    [
        ({"port": 70000}, "--port", "70000 is not a port number (0-65535)"),
        ({"smart_hosts": ("a..b",)}, "--smart-host", "'a..b' is not a host name"),
        ({"smart_hosts": ("x.example", "x.example")}, "--smart-host", "the same smart host"),
    ],
)
def test_an_option_error_names_its_option_apart_from_the_problem(
    options: dict[str, object], flag: str, problem: str
) -> None:
    # Bulk names the row key and the wizard its question from these fields, not by parsing
    # the message (which is the command line's: "--port: ...").
    with pytest.raises(OptionError) as caught:
        FixOptions(connector="Outbound to Relay", **options)  # type: ignore[arg-type]
    assert caught.value.flag == flag and caught.value.problem.startswith(problem)
    assert caught.value.message == f"{flag}: {caught.value.problem}"
