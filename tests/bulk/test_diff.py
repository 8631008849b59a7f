"""Desired against current: the same plans as plan/apply, only what differs, per connector."""

from __future__ import annotations

from pathlib import Path

from remediate.bulk.diff import diff_lines, plan_endpoint
from remediate.bulk.spec import load
from remediate.core.exchange import AuthMechanism, CredentialState, SendConnector
from remediate.core.plan import CredentialRef
from remediate.remote.connections import Connection, ProfileStore

RELAY = SendConnector(
    "Outbound to Relay",
    guid="11111111-1111-4111-8111-111111111111",
    smart_hosts=("smtp.relay.contoso.com",),
    dns_routing_enabled=False,
    smart_host_auth_mechanism=AuthMechanism.BASIC_AUTH,
    credential=CredentialState.SET,
    port=587,
)
ARCHIVE = RELAY.replace(
    name="Outbound to Archive",
    guid="22222222-2222-4222-8222-222222222222",
    smart_hosts=("archive.relay.contoso.com",),
    smart_host_auth_mechanism=AuthMechanism.BASIC_AUTH_REQUIRE_TLS,
)
INTERNET = SendConnector("Internet Mail", guid="33333333-3333-4333-8333-333333333333")


def rows(tmp_path: Path, body: str):
    store = ProfileStore(tmp_path / "profiles.json")
    store.save(Connection(server="ex01.contoso.com", port=80, profile="ex01"))
    path = tmp_path / "fix.yaml"
    path.write_text("connectors:\n" + body, encoding="utf-8")
    return load(path, store).rows


def test_only_what_differs_is_planned(tmp_path: Path) -> None:
    spec_rows = rows(
        tmp_path,
        """\
  - endpoint: ex01
    smart_host_match: "*.relay.contoso.com"
    mechanism: BasicAuthRequireTLS
    credential_user: relay@contoso.com
""",
    )
    targets, unmatched = plan_endpoint(spec_rows, [INTERNET, RELAY, ARCHIVE])
    assert unmatched == []
    relay, archive = targets
    assert relay.name == "Outbound to Relay" and relay.pending
    assert relay.plan is not None
    assert [s.cmdlet for s in relay.plan.steps] == ["Set-SendConnector"]
    assert (
        relay.plan.steps[0].param("SmartHostAuthMechanism") is AuthMechanism.BASIC_AUTH_REQUIRE_TLS
    )
    # a new mechanism is sent with the row's credential: the stored one cannot be compared
    assert relay.changes() == [
        ("SmartHostAuthMechanism", "BasicAuth", "BasicAuthRequireTLS"),
        ("AuthenticationCredential", "set", "relay@contoso.com (password re-entered)"),
    ]
    assert not archive.pending and archive.changes() == []
    assert diff_lines("ex01", relay) == [
        "--- ex01: Outbound to Relay (before)",
        "+++ ex01: Outbound to Relay (after)",
        "-SmartHostAuthMechanism: BasicAuth",
        "+SmartHostAuthMechanism: BasicAuthRequireTLS",
        "-AuthenticationCredential: set",
        "+AuthenticationCredential: relay@contoso.com (password re-entered)",
    ]
    assert diff_lines("ex01", archive) == ["=== ex01: Outbound to Archive: ok, nothing to change"]


def test_reentered_credential_uses_the_rows_keyring_entry(tmp_path: Path) -> None:
    spec_rows = rows(
        tmp_path,
        """\
  - endpoint: ex01
    connector: 11111111-1111-4111-8111-111111111111
    credential_user: relay@contoso.com
    credential_key: rotated-2026
    reenter_credential: true
""",
    )
    [relay], _ = plan_endpoint(spec_rows, [RELAY, ARCHIVE])
    assert relay.plan is not None
    assert relay.plan.credentials == (
        CredentialRef("relay@contoso.com", "remediate:relay", "rotated-2026"),
    )
    assert relay.changes() == [
        ("AuthenticationCredential", "set", "relay@contoso.com (password re-entered)")
    ]


def test_unmatched_conflicting_and_refused_rows(tmp_path: Path) -> None:
    spec_rows = rows(
        tmp_path,
        """\
  - endpoint: ex01
    connector: Nowhere
    port: 25
  - endpoint: ex01
    smart_host_match: "*.example"
    port: 25
  - endpoint: ex01
    connector: Outbound to Relay
    port: 2525
  - endpoint: ex01
    smart_host_match: "smtp.relay.*"
    port: 25
  - endpoint: ex01
    connector: Internet Mail
    mechanism: BasicAuth
    credential_user: relay
""",
    )
    targets, unmatched = plan_endpoint(spec_rows, [RELAY, INTERNET])
    assert [(u.row.line, u.message) for u in unmatched] == [
        (2, "Send connector 'Nowhere' not found"),
        (5, "no Send connector has a smart host matching '*.example'"),
    ]
    relay, internet = targets
    assert relay.plan is None and relay.error == "selected by the rows on lines 8, 11: keep one"
    assert internet.plan is None and internet.error is not None
    assert internet.error.startswith("refused before sending:")
    assert diff_lines("ex01", internet)[0].startswith("!!! ex01: Internet Mail: refused")
