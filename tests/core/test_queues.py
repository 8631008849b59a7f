"""LastError in every shape Exchange writes, each mapped to its cause."""

from __future__ import annotations

import pytest

from remediate.core.last_error import Cause, parse_last_error, unwrap
from remediate.lab import transport

FAILOVER = (
    "Attempted failover to alternate host, but that did not succeed. Either there are no "
    "alternate hosts, or delivery failed to all alternate hosts. The last endpoint attempted "
    "was 10.0.0.25:587"
)

CASES = [
    ("454 4.7.0 Temporary authentication failure", Cause.CREDENTIAL, 454, "4.7.0"),
    (
        f'451 4.4.0 Primary target IP address responded with: "454 4.7.0 Temporary '
        f'authentication failure." {FAILOVER}',
        Cause.CREDENTIAL,
        454,
        "4.7.0",
    ),
    (
        f'451 4.4.0 Primary target IP address responded with: "535 5.7.3 Authentication '
        f'unsuccessful." {FAILOVER}',
        Cause.PASSWORD_REJECTED,
        535,
        "5.7.3",
    ),
    ("451 5.7.3 Require basic authentication", Cause.AUTH_LOGIN_MISSING, 451, "5.7.3"),
    (
        "451 5.7.3 Require STARTTLS to do basic authentication",
        Cause.STARTTLS_MISSING,
        451,
        "5.7.3",
    ),
    (
        "454 4.7.5 The certificate specified in TlsCertificateName of the SendConnector could "
        "not be found.",
        Cause.CERTIFICATE,
        454,
        "4.7.5",
    ),
    (
        '441 4.4.1 Error encountered while communicating with primary target IP address: "Failed '
        f'to connect. Winsock error code: 10060, Win32 error code: 10060." {FAILOVER}',
        Cause.TIMEOUT,
        441,
        "4.4.1",
    ),
    (
        '441 4.4.1 Error encountered while communicating with primary target IP address: "Failed '
        f'to connect. Winsock error code: 10061, Win32 error code: 10061." {FAILOVER}',
        Cause.CONNECTION_REFUSED,
        441,
        "4.4.1",
    ),
    ("421 4.2.1 Unable to connect", Cause.UNREACHABLE, 421, "4.2.1"),
    (
        "451 4.4.0 DNS query failed. The error was: SMTPSEND.DNS.NonExistentDomain; "
        "nonexistent domain",
        Cause.DNS,
        451,
        "4.4.0",
    ),
    (
        "[{LRT=11/22/2026 6:01:02 PM};{LED=451 5.7.3 Require STARTTLS to do basic "
        "authentication};{FQDN=relay.contoso.lab};{IP=10.0.0.25}]",
        Cause.STARTTLS_MISSING,
        451,
        "5.7.3",
    ),
    (
        "[{LRT=22.11.2026 18:01:02};{LED=441 4.4.1 Error encountered while communicating with "
        'primary target IP address: "Failed to connect. Winsock error code: 10061, Win32 error '
        'code: 10061."};{FQDN=relay.contoso.lab};{IP=127.0.0.1}]',
        Cause.CONNECTION_REFUSED,
        441,
        "4.4.1",
    ),
    (
        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
        "Tenant.",
        Cause.SMTP_AUTH_DISABLED,
        535,
        "5.7.139",
    ),
    ("550 5.7.1 Unable to relay", Cause.REJECTED, 550, "5.7.1"),
    ("Something odd happened", Cause.UNKNOWN, None, None),
]


@pytest.mark.parametrize(("text", "cause", "code", "enhanced"), CASES)
def test_each_shape_maps_to_its_cause(text, cause, code, enhanced) -> None:
    found = parse_last_error(text)
    assert found is not None
    assert (found.cause, found.smtp_code, found.enhanced_status) == (cause, code, enhanced)
    assert found.summary and found.action
    assert found.raw == text


def test_every_cause_is_reachable() -> None:
    assert {c for _, c, _, _ in CASES} >= set(Cause) - {Cause.EXCHANGE_AUTH}
    assert parse_last_error(transport.REQUIRE_EXCHANGE_AUTH).cause is Cause.EXCHANGE_AUTH


def test_the_wrapper_fields_are_kept() -> None:
    reply, fields = unwrap(
        "[{LRT=1/1/2026 1:00:00 AM};{LED=421 4.2.1 Unable to connect};"
        "{FQDN=mx.partner.example};{IP=192.0.2.7}]"
    )
    assert reply == "421 4.2.1 Unable to connect"
    assert fields["FQDN"] == "mx.partner.example" and fields["IP"] == "192.0.2.7"


def test_winsock_code_and_inner_reply() -> None:
    found = parse_last_error(transport.winsock_error(10061, "127.0.0.1:2"))
    assert found is not None and found.winsock == 10061
    assert found.reply.startswith("Failed to connect.")


@pytest.mark.parametrize("text", [None, "", "   "])
def test_no_error(text) -> None:
    assert parse_last_error(text) is None


def test_what_the_lab_writes_is_understood() -> None:
    """The lab's LastErrors (its own strings) land on the causes a reader expects."""
    expected = {
        transport.AUTH_TEMP_FAILURE: Cause.CREDENTIAL,
        transport.REQUIRE_STARTTLS: Cause.STARTTLS_MISSING,
        transport.REQUIRE_BASIC_AUTH: Cause.AUTH_LOGIN_MISSING,
        transport.DNS_FAILED: Cause.DNS,
        transport.DISCONNECTED: Cause.UNREACHABLE,
        transport.responded_with("535 5.7.3 Authentication unsuccessful", "x:1"): (
            Cause.PASSWORD_REJECTED
        ),
        transport.winsock_error(10060, "x:1"): Cause.TIMEOUT,
    }
    for text, cause in expected.items():
        found = parse_last_error(text)
        assert found is not None and found.cause is cause, text
