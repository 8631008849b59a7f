"""Retry-Queue makes the lab really deliver through a connector's settings to the real
aiosmtpd smart host: it fails with Exchange's LastError and events before the fix and drains
the queue after it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from remediate.lab.api import LabCredential
from remediate.lab.certs import LabCA
from remediate.lab.cmdlets import ExchangeShell
from remediate.lab.org import Organization
from remediate.lab.smarthost import SmartHost
from tests.lab.org_fixtures import (  # noqa: F401 - fixtures
    PARTNER,
    RELAY,
    free_port,
    lab_ca_fixture,
    org_fixture,
    run,
    shell_fixture,
    smart_host_fixture,
)

RELAY_QUEUE, PARTNER_QUEUE = "EX01\\4", "EX01\\5"
RELAY_QUEUE_EX02 = "EX02\\12"  # the 2016 connector's queue on its second source server


def queue(shell: ExchangeShell, identity: str) -> dict:
    (found,) = run(shell, "Get-Queue", (None, identity))
    return found.properties


def retry(shell: ExchangeShell, org: Organization, identity: str) -> dict:
    run(shell, "Retry-Queue", ("Identity", identity), ("Confirm", False))
    org.wait_for_deliveries()
    return queue(shell, identity)


def set_connector(shell: ExchangeShell, name: str, *params) -> None:
    run(shell, "Set-SendConnector", ("Identity", name), *params, ("Confirm", False))


def relay_credential(org: Organization, password: str | None = None) -> LabCredential:
    return LabCredential(org.relay_user, org.relay_password if password is None else password)


def test_relay_fails_with_2016_on_both_servers_until_a_common_mechanism_and_credential(
    shell: ExchangeShell, org: Organization, smart_host: SmartHost
) -> None:
    """The seeded 2016: ExchangeServer against a smart host without Exchange's extensions
    (exchange-notes.md: ExchangeServer needs X-ANONYMOUSTLS / X-EXPS). The event page's fix,
    a common mechanism with the correct credential, drains the queues of both source servers;
    EX02 delivers under its own name (EHLO EX02.contoso.lab)."""
    events_before = len(org.events)
    failed = retry(shell, org, RELAY_QUEUE)
    assert failed["Status"] == "Retry" and failed["MessageCount"] == 3
    assert failed["LastError"].startswith("[{LRT=")
    assert failed["LastError"].endswith(
        "{LED=451 5.7.3 Cannot achieve Exchange Server authentication};{FQDN=localhost};"
        "{IP=127.0.0.1}]"
    )
    (event,) = org.events[events_before:]
    assert (event.event_id, event.level, event.source) == (2016, "Error", "MSExchangeTransport")
    assert event.fields == ["Unsupported", RELAY, "ExchangeAuth", "SMTPSVC/localhost", "EX01$"]
    assert event.machine == "EX01.contoso.lab"
    assert event.message == (  # the event page's full text (exchange-notes.md)
        "An authentication credential initialization error Unsupported occurred with "
        f"Send connector {RELAY}. The authentication mechanism used was ExchangeAuth. The name "
        "of the server that we were trying to authenticate to was SMTPSVC/localhost. This "
        "server was using the name EX01$. Try reentering the credential. If the problem "
        "persists, contact Microsoft Support Services."
    )
    on_ex02 = queue_on(shell, "EX02", RELAY_QUEUE_EX02, retry_first=True, org=org)
    assert on_ex02["Status"] == "Retry" and on_ex02["MessageCount"] == 2
    (event,) = org.events[events_before + 1 :]
    assert event.fields[4] == "EX02$" and event.machine == "EX02.contoso.lab"
    assert smart_host.messages == []

    set_connector(
        shell,
        RELAY,
        ("SmartHostAuthMechanism", "BasicAuthRequireTLS"),
        ("AuthenticationCredential", relay_credential(org)),
    )
    drained = retry(shell, org, RELAY_QUEUE)
    assert (drained["Status"], drained["MessageCount"], drained["LastError"]) == ("Ready", 0, "")
    on_ex02 = queue_on(shell, "EX02", RELAY_QUEUE_EX02, retry_first=True, org=org)
    assert on_ex02["MessageCount"] == 0
    received = smart_host.messages
    assert len(received) == 5
    assert {m.user for m in received} == {org.relay_user}
    assert [m.helo for m in received] == ["EX01.contoso.lab"] * 3 + ["EX02.contoso.lab"] * 2
    assert all(m.rcpt_tos[0].endswith("@tailspintoys.example") for m in received)
    assert b"Subject: Lab test message 1 via Outbound to Relay from EX01" in received[0].data
    assert len(org.events) == events_before + 2  # success writes no event


def queue_on(
    shell: ExchangeShell, server: str, identity: str, *, retry_first: bool, org: Organization
) -> dict:
    """EX02's queue, reached with -Server as Exchange requires (Get-Queue docs)."""
    if retry_first:
        run(shell, "Retry-Queue", ("Filter", "MessageCount -gt 0"), ("Server", server))
        org.wait_for_deliveries()
    (found,) = [q for q in run(shell, "Get-Queue", ("Server", server)) if q.to_string == identity]
    return found.properties


def test_partner_fails_with_2002_on_the_closed_port_then_delivers(
    shell: ExchangeShell, org: Organization, smart_host: SmartHost
) -> None:
    events_before = len(org.events)
    failed = retry(shell, org, PARTNER_QUEUE)
    endpoint = f"127.0.0.1:{org.closed_port}"
    assert failed["LastError"].startswith("[{LRT=")  # the 2013+ wrapper (exchange-notes.md)
    assert failed["LastError"].endswith(
        "{LED=441 4.4.1 Error encountered while communicating with primary target IP address: "
        '"Failed to connect. Winsock error code: 10061, Win32 error code: 10061." Attempted '
        "failover to alternate host, but that did not succeed. Either there are no alternate "
        "hosts, or delivery failed to all alternate hosts. The last endpoint attempted was "
        f"{endpoint}}};{{FQDN=localhost}};{{IP=127.0.0.1}}]"
    )
    (event,) = org.events[events_before:]
    assert (event.event_id, event.level) == (2002, "Warning")
    assert (
        event.message
        == f"Send connector {PARTNER}: an error occurred while connecting to {endpoint}."
    )
    assert failed["RetryCount"] == 4

    set_connector(
        shell,
        PARTNER,
        ("Port", smart_host.port),
        ("SmartHostAuthMechanism", "BasicAuth"),
        ("AuthenticationCredential", relay_credential(org)),
    )
    assert retry(shell, org, PARTNER_QUEUE)["MessageCount"] == 0
    assert len(smart_host.messages) == 2


def test_a_wrong_password_is_the_smart_hosts_535_and_never_shown(
    shell: ExchangeShell, org: Organization, smart_host: SmartHost
) -> None:
    wrong = "Not-the-relay-password-42"
    set_connector(
        shell,
        RELAY,
        ("SmartHostAuthMechanism", "BasicAuthRequireTLS"),
        ("AuthenticationCredential", relay_credential(org, wrong)),
    )
    failed = retry(shell, org, RELAY_QUEUE)
    assert '"535 5.7.8 Authentication credentials invalid."' in failed["LastError"]
    assert wrong not in repr(org.events) + failed["LastError"]
    assert smart_host.messages == []


def test_no_authentication_is_refused_by_the_smart_host(
    shell: ExchangeShell, org: Organization, smart_host: SmartHost
) -> None:
    set_connector(shell, RELAY, ("SmartHostAuthMechanism", "None"))
    failed = retry(shell, org, RELAY_QUEUE)
    assert '"530 5.7.0 Authentication required."' in failed["LastError"]
    assert smart_host.messages == []


@pytest.fixture
def weak_smart_host(org: Organization, lab_ca: LabCA, request) -> Iterator[SmartHost]:
    """A smart host on its own port with options from the test's parameter."""
    options = request.param
    server = SmartHost(
        ("127.0.0.1", free_port()),
        ca=lab_ca,
        relay_user=org.relay_user,
        relay_password=org.relay_password,
        **options,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("weak_smart_host", "mechanism", "last_error", "reason"),
    [
        (
            {"starttls": False},
            "BasicAuthRequireTLS",
            "451 5.7.3 Require STARTTLS to do basic authentication",
            "Unsupported",
        ),
        (
            {"auth": False, "starttls": False},
            "BasicAuth",
            "451 5.7.3 Require basic authentication",
            "Unsupported",
        ),
        (
            {"cert_names": ["relay.fabrikam.example"]},
            "BasicAuthRequireTLS",
            "454 4.7.0",
            "WrongPrincipal",
        ),
    ],
    indirect=["weak_smart_host"],
)
def test_what_the_smart_host_lacks_is_a_2016(
    shell: ExchangeShell,
    org: Organization,
    weak_smart_host: SmartHost,
    mechanism: str,
    last_error: str,
    reason: str,
) -> None:
    set_connector(
        shell,
        RELAY,
        ("Port", weak_smart_host.port),
        ("SmartHostAuthMechanism", mechanism),
        ("AuthenticationCredential", relay_credential(org)),
    )
    events_before = len(org.events)
    failed = retry(shell, org, RELAY_QUEUE)
    assert last_error in failed["LastError"]
    (event,) = org.events[events_before:]
    assert event.event_id == 2016 and event.fields[0] == reason
    assert event.fields[4] == org.relay_user
    assert weak_smart_host.messages == []


@pytest.mark.parametrize("weak_smart_host", [{"auth": False, "starttls": False}], indirect=True)
def test_a_smart_host_without_auth_or_tls_takes_unauthenticated_mail(
    shell: ExchangeShell, org: Organization, weak_smart_host: SmartHost
) -> None:
    set_connector(shell, RELAY, ("Port", weak_smart_host.port), ("SmartHostAuthMechanism", "None"))
    assert retry(shell, org, RELAY_QUEUE)["MessageCount"] == 0
    assert [m.user for m in weak_smart_host.messages] == [None, None, None]


def test_the_lab_never_connects_beyond_loopback(shell: ExchangeShell, org: Organization) -> None:
    set_connector(shell, PARTNER, ("SmartHosts", ["relay.fabrikam.example"]))
    assert "{LED=451 4.4.0 DNS query failed" in retry(shell, org, PARTNER_QUEUE)["LastError"]
    set_connector(shell, PARTNER, ("SmartHosts", ["[192.0.2.25]"]))
    unreachable = retry(shell, org, PARTNER_QUEUE)["LastError"]
    assert "Winsock error code: 10060" in unreachable and "192.0.2.25" in unreachable


def test_get_queue_sees_the_attempt_in_flight(shell: ExchangeShell, org: Organization) -> None:
    """A real listener that holds back its greeting until the test has looked at the queue."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    looked = threading.Event()

    def stall() -> None:
        connection, _ = listener.accept()
        with connection:
            looked.wait(30)
            connection.sendall(b"421 4.3.2 Service not available\r\n")

    server = threading.Thread(target=stall, daemon=True)
    server.start()
    try:
        set_connector(shell, PARTNER, ("Port", port))
        run(shell, "Retry-Queue", ("Identity", PARTNER_QUEUE))
        assert queue(shell, PARTNER_QUEUE)["Status"] == "Active"
        run(shell, "Retry-Queue", ("Identity", PARTNER_QUEUE))  # already active: no second try
    finally:
        looked.set()
        org.wait_for_deliveries()
        server.join(10)
        listener.close()
    after = queue(shell, PARTNER_QUEUE)
    assert after["Status"] == "Retry"
    assert '"421 4.3.2 Service not available."' in after["LastError"]
