"""Where reachability was checked and what it allows (``remediate.diagnose.vantage``), and the WinRM
endpoint derived from a connection (``remediate.diagnose.server_view.winrm_connection``)."""

from __future__ import annotations

from remediate.core.exchange import QueueInfo
from remediate.diagnose.reachability import AddressCheck, HostCheck, Outcome
from remediate.diagnose.server_view import TcpCheck, winrm_connection
from remediate.diagnose.vantage import Evidence
from remediate.remote.connections import AuthMethod, Connection

REFUSED = (
    '441 4.4.1 Error encountered while communicating with primary target IP address: "Failed '
    'to connect. Winsock error code: 10061, Win32 error code: 10061."'
)
CREDENTIAL = "454 4.7.0 Temporary authentication failure"


def tcp(succeeded: bool) -> TcpCheck:
    return TcpCheck("EX01", "relay.contoso.com", 587, succeeded, True, "10.0.0.5", 12.0)


def here(outcome: Outcome) -> HostCheck:
    attempt = AddressCheck("10.0.0.5", outcome)
    return HostCheck("relay.contoso.com", 587, ("10.0.0.5",), 1.0, (attempt,))


def test_the_server_answering_clears_the_routing_whatever_this_machine_sees() -> None:
    evidence = Evidence(server="EX01", server_checks=[tcp(True)], here=[here(Outcome.REFUSED)])
    assert evidence.server_reaches is True and not evidence.routing_suspect
    assert "no routing change is proposed" in evidence.verdict()
    assert "this machine's own network path" in evidence.verdict()
    stale, credential = (
        QueueInfo("EX01\\5", last_error=REFUSED),
        QueueInfo("EX01\\6", last_error=CREDENTIAL),
    )
    assert evidence.stale_queues([stale, credential]) == [stale]
    [finding] = evidence.findings()
    assert finding.line().startswith("[ok]   from EX01: relay.contoso.com:587 from EX01")


def test_the_server_not_answering_is_what_makes_routing_suspect() -> None:
    evidence = Evidence(server="EX01", server_checks=[tcp(False)], here=[here(Outcome.BANNER)])
    assert evidence.routing_suspect
    assert evidence.verdict().endswith("(it answers from this machine)")
    assert evidence.stale_queues([QueueInfo("EX01\\5", last_error=REFUSED)]) == []


def test_without_the_server_view_nothing_is_concluded_from_this_machine() -> None:
    evidence = Evidence(here=[here(Outcome.REFUSED)], note="the server's own view is not available")
    assert evidence.server_reaches is None and not evidence.routing_suspect
    assert evidence.verdict().startswith("only this machine was checked")
    assert [f.topic for f in evidence.findings()] == ["server view"]


def test_winrm_endpoint_is_the_same_server_on_winrms_port() -> None:
    exchange = Connection(
        server="ex01.contoso.com", port=80, path="/PowerShell", auth=AuthMethod.KERBEROS,
        username="admin@contoso.com", profile="ex01",
    )  # fmt: skip
    winrm = winrm_connection(exchange)
    assert winrm.url == "http://ex01.contoso.com:5985/wsman"
    assert winrm.configuration_name == "Microsoft.PowerShell"
    assert (winrm.auth, winrm.username, winrm.profile) == (
        AuthMethod.KERBEROS, "admin@contoso.com", "ex01",
    )  # fmt: skip
    tls = Connection(server="ex01.contoso.com", port=443, path="/PowerShell", scheme="https")
    assert winrm_connection(tls).url == "https://ex01.contoso.com:5986/wsman"
    given = winrm_connection(exchange, "https://ex01-mgmt.contoso.com:5986")
    assert given.url == "https://ex01-mgmt.contoso.com:5986/wsman"
