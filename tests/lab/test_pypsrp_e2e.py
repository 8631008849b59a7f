"""The whole lab (real ExchangeShell, organisation, aiosmtpd smart host) driven by bare pypsrp
0.9.1 over real HTTP, as the issue asks: not through remediate's own client code."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from pypsrp.complex_objects import PSCredential
from pypsrp.host import PSHost, PSHostUserInterface
from pypsrp.powershell import PowerShell, PSInvocationState, RunspacePool

from remediate.lab.cmdlets import ERROR_HEX_IDS
from remediate.lab.faults import Faults
from remediate.lab.server import Lab
from tests.lab.lab_helpers import lab_pool, lab_wsman, start_lab, wire_props

pytestmark = pytest.mark.e2e

RELAY = "Outbound to Relay"  # seeded to reproduce event 2016
PARTNER = "Outbound to Partner"  # seeded to reproduce event 2002


def _run(pool: RunspacePool, cmdlet: str, *params: tuple[str, object]) -> PowerShell:
    ps = PowerShell(pool)
    ps.add_cmdlet(cmdlet)
    for name, value in params:
        ps.add_parameter(name, value)
    ps.invoke()
    return ps


def _get(pool: RunspacePool, name: str):
    ps = _run(pool, "Get-SendConnector", ("Identity", name))
    assert not ps.streams.error, [str(e) for e in ps.streams.error]
    (connector,) = ps.output
    return connector


def _relay_queue(pool: RunspacePool):
    ps = _run(pool, "Get-Queue", ("Include", "SmartHostConnectorDelivery"))
    connector = _get(pool, RELAY)
    guid = connector.adapted_properties["Guid"]
    (queue,) = [q for q in ps.output if q.adapted_properties["NextHopConnector"] == guid]
    return queue


def _fix_relay(lab: Lab, pool: RunspacePool) -> PowerShell:
    pool.exchange_keys()
    credential = PSCredential(username=lab.relay_user, password=lab.relay_password)
    return _run(
        pool,
        "Set-SendConnector",
        ("Identity", RELAY),
        ("SmartHostAuthMechanism", "BasicAuthRequireTLS"),
        ("AuthenticationCredential", credential),
        ("Confirm", False),
    )


def _wait_until(predicate, limit: float = 20.0) -> None:
    """Poll for a background outcome (a generous limit, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("the lab never reached the expected state")
        time.sleep(0.05)


def test_get_send_connector_returns_exchange_shaped_objects(lab: Lab) -> None:
    with lab_pool(lab) as pool:
        ps = _run(pool, "Get-SendConnector")
    assert ps.state == PSInvocationState.COMPLETED
    names = {str(c) for c in ps.output}
    assert {RELAY, PARTNER} <= names
    relay = next(c for c in ps.output if str(c) == RELAY)
    # exchange-notes.md, "What comes back": real type names, no "Deserialized." prefix
    assert relay.types[0] == (
        "Microsoft.Exchange.Data.Directory.SystemConfiguration.SmtpSendConnectorConfig"
    )
    assert relay.types[-1] == "System.Object"
    props = wire_props(relay)
    assert props["Name"] == RELAY
    assert props["SmartHostAuthMechanism"] == "ExchangeServer"
    assert props["AuthenticationCredential"] is None  # ExchangeServer: none
    # multi-valued properties arrive as MultiValuedProperty objects holding an <LST>
    smart_hosts = relay.adapted_properties["SmartHosts"]
    assert smart_hosts.types[0].startswith(
        "Microsoft.Exchange.Data.MultiValuedProperty`1[[Microsoft.Exchange.Data.SmartHost,"
    )
    assert props["SmartHosts"] == ["localhost"]
    assert props["SourceTransportServers"] == ["EX01", "EX02"]


def test_set_send_connector_with_a_pscredential_stores_the_decrypted_password(lab: Lab) -> None:
    with lab_pool(lab) as pool:
        ps = _fix_relay(lab, pool)
        assert ps.state == PSInvocationState.COMPLETED and not ps.streams.error
        relay = _get(pool, RELAY)
    # exchange-notes.md: a set credential is flattened to its type name over remoting
    assert relay.adapted_properties["AuthenticationCredential"] == (
        "System.Management.Automation.PSCredential"
    )
    assert lab.relay_password not in repr(relay.adapted_properties)
    assert lab.relay_user not in repr(wire_props(relay))
    stored = lab.organization.connector(RELAY).credential
    assert (stored.username, stored.password) == (lab.relay_user, lab.relay_password)


def test_what_if_changes_nothing_and_tells_the_host(lab: Lab) -> None:
    host = PSHost(None, None, False, "e2e", None, PSHostUserInterface(), None)
    with lab_pool(lab, host=host) as pool:
        before = wire_props(_get(pool, PARTNER))
        ps = _run(
            pool, "Set-SendConnector", ("Identity", PARTNER), ("Port", 2525), ("WhatIf", None)
        )
        after = wire_props(_get(pool, PARTNER))
    assert ps.state == PSInvocationState.COMPLETED and ps.output == []
    assert after == before
    assert any(line.startswith("What if: ") and PARTNER in line for line in host.ui.stdout)


def test_script_text_is_refused(lab: Lab) -> None:
    with lab_pool(lab) as pool:
        ps = PowerShell(pool)
        ps.add_script(f"Get-SendConnector '{RELAY}' | Set-SendConnector -Port 587")
        ps.invoke()
    assert ps.had_errors
    assert str(ps.streams.error[0]).startswith("The syntax is not supported by this runspace.")


def test_unknown_cmdlet_and_bad_parameter_are_powershell_errors(lab: Lab) -> None:
    with lab_pool(lab) as pool:
        unknown = _run(pool, "Get-Mailbox")
        bad_type = _run(pool, "Set-SendConnector", ("Identity", RELAY), ("Port", "abc"))
        bad_name = _run(pool, "Set-SendConnector", ("Identity", RELAY), ("Colour", "red"))
    assert unknown.had_errors
    assert unknown.streams.error[0].reason == "CommandNotFoundException"
    assert bad_type.had_errors
    assert bad_type.streams.error[0].reason == "ParameterBindingException"
    assert bad_name.had_errors
    assert bad_name.streams.error[0].fq_error.startswith("NamedParameterNotFound")


@pytest.mark.parametrize(
    ("params", "error_id"),
    [
        ([("SmartHosts", ["relay.contoso.lab"])], None),  # rule 2 on a DNS-routed connector
        ([("DNSRoutingEnabled", False), ("SmartHosts", [])], "SmartHostNotSet"),
        ([("SmartHostAuthMechanism", "BasicAuth")], None),  # rule 1: still DNS-routed
        ([("RequireTLS", True), ("IgnoreSTARTTLS", True)], None),
        ([("TlsDomain", "contoso.lab")], None),
        ([("AddressSpaces", [])], None),
    ],
)
def test_exchange_rules_refuse_over_the_wire(lab: Lab, params, error_id) -> None:
    with lab_pool(lab) as pool:
        before = wire_props(_get(pool, "Internet Mail"))
        ps = _run(pool, "Set-SendConnector", ("Identity", "Internet Mail"), *params)
        after = wire_props(_get(pool, "Internet Mail"))
    assert ps.had_errors, params
    if error_id:  # Exchange's hex id (exchange-notes.md "What comes back")
        assert f"] {ERROR_HEX_IDS[error_id]}," in ps.streams.error[0].fq_error
    assert after == before


def test_basic_auth_without_credential_is_refused(lab: Lab) -> None:
    with lab_pool(lab) as pool:
        ps = _run(
            pool,
            "Set-SendConnector",
            ("Identity", RELAY),  # ExchangeServer holds no credential; Partner holds one
            ("SmartHostAuthMechanism", "BasicAuth"),
        )
    assert ps.had_errors
    assert ERROR_HEX_IDS["AuthenticationCredentialNotSet"] in ps.streams.error[0].fq_error


def test_retry_queue_fails_before_the_fix_and_delivers_once_the_transport_has_the_change(
    lab: Lab,
) -> None:
    """The change reaches the transport after the lab's config delay (default 2 s;
    exchange-notes.md "Transport behaviour"): retried until then, as an admin would."""
    with lab_pool(lab) as pool:
        queue = _relay_queue(pool)
        identity = queue.adapted_properties["Identity"]
        assert queue.adapted_properties["MessageCount"] > 0
        events_before = len(lab.organization.events)

        _run(pool, "Retry-Queue", ("Identity", identity))
        _wait_until(lambda: _relay_queue(pool).adapted_properties["Status"] == "Retry")
        failed = _relay_queue(pool).adapted_properties
        assert "5.7.3 Cannot achieve Exchange Server authentication" in failed["LastError"]
        new_events = lab.organization.events[events_before:]
        assert any(e.event_id == 2016 for e in new_events)
        assert lab.smart_host.messages == []

        _fix_relay(lab, pool)

        def retried_and_drained() -> bool:
            _run(pool, "Retry-Queue", ("Identity", identity))
            _wait_until(lambda: _relay_queue(pool).adapted_properties["Status"] != "Active")
            return _relay_queue(pool).adapted_properties["MessageCount"] == 0

        _wait_until(retried_and_drained)
    assert len(lab.smart_host.messages) == queue.adapted_properties["MessageCount"]


def test_state_survives_a_restart(tmp_path: Path) -> None:
    first = start_lab(tmp_path)
    try:
        with lab_pool(first) as pool:
            _run(pool, "Set-SendConnector", ("Identity", PARTNER), ("Port", 2526))
    finally:
        first.stop()
    second = start_lab(tmp_path)
    try:
        with lab_pool(second) as pool:
            assert wire_props(_get(pool, PARTNER))["Port"] == 2526
    finally:
        second.stop()
    reset = start_lab(tmp_path, reset=True)
    try:
        with lab_pool(reset) as pool:
            assert wire_props(_get(pool, PARTNER))["Port"] != 2526
    finally:
        reset.stop()


def test_twenty_concurrent_clients(lab: Lab) -> None:
    failures: list[BaseException] = []
    seen: list[set[str]] = []

    def client() -> None:
        try:
            with lab_pool(lab) as pool:
                seen.append({str(c) for c in _run(pool, "Get-SendConnector").output})
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=client) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert len(seen) == 20 and all(RELAY in names for names in seen)


def test_https_with_the_written_ca(tls_lab: Lab) -> None:
    assert tls_lab.endpoint_url.startswith("https://")
    assert tls_lab.ca_file is not None and tls_lab.ca_file.exists()
    with lab_pool(tls_lab) as pool:
        assert RELAY in {str(c) for c in _run(pool, "Get-SendConnector").output}


def test_each_fault_knob_over_the_real_lab(make_lab) -> None:
    from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError
    from requests.exceptions import ConnectionError as RequestsConnectionError

    cases = [
        (Faults(drop_on_request=1), RequestsConnectionError),
        (Faults(http_500_on_request=1), WinRMTransportError),
        (Faults(wsman_fault_on_request=1), WSManFaultError),
        (Faults(refuse_auth=True), AuthenticationError),
    ]
    for faults, error in cases:
        faulty = make_lab(faults)
        with pytest.raises(error):
            RunspacePool(lab_wsman(faulty), configuration_name="Microsoft.Exchange").open()
    slow = make_lab(Faults(latency=0.05))
    with lab_pool(slow) as pool:
        assert _run(pool, "Get-SendConnector").output
    assert slow.faults.requests_seen >= 3
