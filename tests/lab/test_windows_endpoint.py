"""The lab's second endpoint, the server's default WinRM one (/wsman, Microsoft.PowerShell),
driven with bare pypsrp: the shapes of Microsoft Learn's Test-NetConnection, Get-WinEvent,
Get-ChildItem, Get-Content and Select-String pages, the paths it confines itself to, and the
Send protocol log the transport writes (Microsoft Learn, "Protocol logging")."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypsrp.exceptions import WSManFaultError
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from remediate.lab.protocol_log import SEND_LOG_PATH
from remediate.lab.server import Address, Lab
from tests.lab.lab_helpers import start_lab

pytestmark = pytest.mark.e2e


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    lab = start_lab(tmp_path, config_delay=0)
    try:
        yield lab
    finally:
        lab.stop()


def winrm(lab: Lab, configuration: str = "Microsoft.PowerShell", path: str = "wsman") -> Any:
    wsman = WSMan(
        lab.host,
        port=lab.port,
        path=path,
        ssl=False,
        auth="basic",
        username=lab.admin_user,
        password=lab.admin_password,
        encryption="never",
        reconnection_retries=0,
    )
    return RunspacePool(wsman, configuration_name=configuration)


def run(pool: Any, cmdlet: str, **params: Any) -> PowerShell:
    ps = PowerShell(pool)
    ps.add_cmdlet(cmdlet)
    for name, value in params.items():
        ps.add_parameter(name, value)
    ps.invoke()
    return ps


def test_test_net_connection_really_connects_from_the_lab(lab: Lab) -> None:
    with winrm(lab) as pool:
        up = run(pool, "Test-NetConnection", ComputerName="localhost", Port=lab.smtp_address.port)
        down = run(
            pool, "Test-NetConnection", ComputerName="localhost", Port=lab.organization.closed_port
        )
        unknown = run(pool, "Test-NetConnection", ComputerName="relay.branch.invalid", Port=25)
    (result,) = up.output
    assert result.adapted_properties["TcpTestSucceeded"] is True
    assert result.adapted_properties["RemoteAddress"] == "127.0.0.1"
    assert str(result.types[0]) == "TestNetConnectionResult"
    assert down.output[0].adapted_properties["TcpTestSucceeded"] is False
    closed = lab.organization.closed_port
    assert [w.message for w in down.streams.warning] == [
        f"TCP connect to (127.0.0.1 : {closed}) failed"
    ]
    assert [w.message for w in unknown.streams.warning] == [
        "Name resolution of relay.branch.invalid failed"
    ]


def test_a_server_route_changes_only_the_servers_path(lab: Lab) -> None:
    closed, smtp = lab.organization.closed_port, lab.smtp_address.port
    lab.set_server_route(Address("127.0.0.1", closed), Address("127.0.0.1", smtp))
    with winrm(lab) as pool:
        ps = run(pool, "Test-NetConnection", ComputerName="127.0.0.1", Port=closed)
    assert ps.output[0].adapted_properties["TcpTestSucceeded"] is True


def test_get_win_event_filters_the_application_log_of_this_server(lab: Lab) -> None:
    table = {"LogName": "Application", "ProviderName": "MSExchangeTransport", "Id": [2016, 2002]}
    with winrm(lab) as pool:
        found = run(pool, "Get-WinEvent", FilterHashtable=table)
        none = run(pool, "Get-WinEvent", FilterHashtable={"LogName": "Application", "Id": 1035})
        other = run(pool, "Get-WinEvent", FilterHashtable={"LogName": "System"})
    props = [o.adapted_properties for o in found.output]
    assert [p["Id"] for p in props] == [2002, 2016]  # newest first, EX01's only
    assert {p["MachineName"] for p in props} == {"EX01.contoso.lab"}
    assert props[0]["LevelDisplayName"] == "Warning" and props[1]["Level"] == 2
    assert props[0]["Message"].startswith("Send connector Outbound to Partner:")
    assert not none.had_errors and none.output == []  # non-terminating, as on Windows
    assert [str(e) for e in none.streams.error] == [
        "No events were found that match the specified selection criteria."
    ]
    assert "There is not an event log on the localhost computer" in str(other.streams.error[0])


def test_only_the_protocol_log_directory_can_be_read(lab: Lab) -> None:
    outside = [
        r"C:\Windows\System32\config\SAM",
        SEND_LOG_PATH + r"\..\..\..\..\secret.txt",
        SEND_LOG_PATH + r"\..",
        "/etc/passwd",
        str(lab.ca_file),
    ]
    with winrm(lab) as pool:
        for path in outside:
            for cmdlet in ("Get-ChildItem", "Get-Content", "Get-Item"):
                ps = run(pool, cmdlet, Path=path)
                assert ps.output == [], (cmdlet, path)
                assert "because it does not exist" in str(ps.streams.error[0]), (cmdlet, path)
        listed = run(pool, "Get-ChildItem", Path=SEND_LOG_PATH)
    assert listed.output == [] and not listed.streams.error  # the directory exists, empty


def test_the_transport_writes_the_protocol_log_when_verbose(lab: Lab) -> None:
    org = lab.organization
    partner = org.connector("Outbound to Partner")
    partner.port = lab.smtp_address.port
    org.replace_connector(partner)
    assert org.retry_queue("EX01\\5")  # logging is None: nothing written
    org.wait_for_deliveries()
    folder = lab.protocol_log.directory("EX01")
    assert list(folder.iterdir()) == []

    relay = org.connector("Outbound to Relay")
    relay.protocol_logging_level = "Verbose"
    org.replace_connector(relay)
    assert org.retry_queue("EX01\\4")
    org.wait_for_deliveries()
    (log_file,) = folder.iterdir()
    assert log_file.name.startswith("SEND") and log_file.name.endswith("-1.LOG")
    text = log_file.read_bytes().decode("utf-8")  # CRLF kept, as Windows writes it
    assert text.startswith("#Software: Microsoft Exchange Server\r\n#Version: 15.0.0.0\r\n")
    assert "#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint," in text
    assert ",Outbound to Relay," in text and ",*,,attempting to connect" in text
    assert ",>,STARTTLS," in text and ",-,,Local" in text

    with winrm(lab) as pool:
        listed = run(pool, "Get-ChildItem", Path=SEND_LOG_PATH, Filter="SEND*.LOG")
        (info,) = listed.output
        full = info.adapted_properties["FullName"]
        head = run(pool, "Get-Content", Path=full, TotalCount=2)
        tail = run(pool, "Get-Content", Path=full, Tail=1)
        hits = run(pool, "Select-String", Path=full, Pattern="STARTTLS", SimpleMatch=True)
    assert full == SEND_LOG_PATH + "\\" + log_file.name
    assert head.output == ["#Software: Microsoft Exchange Server", "#Version: 15.0.0.0"]
    assert tail.output[0].endswith(",-,,Local")
    assert hits.output and all("STARTTLS" in h.adapted_properties["Line"] for h in hits.output)


def test_auth_login_is_masked_in_the_protocol_log(lab: Lab) -> None:
    org = lab.organization
    archive = org.connector("Outbound to Archive")
    relay = org.connector("Outbound to Relay")
    relay.smart_host_auth_mechanism = "BasicAuth"
    relay.credential = archive.credential  # the working relay account
    relay.protocol_logging_level = "Verbose"
    org.replace_connector(relay)
    assert org.retry_queue("EX01\\4")
    org.wait_for_deliveries()
    (log_file,) = lab.protocol_log.directory("EX01").iterdir()
    text = log_file.read_text(encoding="utf-8")
    assert ",>,AUTH LOGIN," in text and ",>,****," in text
    assert lab.relay_password not in text and "Lab test message" not in text
    assert ",*,,sending message" in text


def test_configurations_are_served_on_their_own_paths(lab: Lab) -> None:
    with pytest.raises(WSManFaultError) as wrong:
        winrm(lab, "Microsoft.Exchange", "wsman").open()
    assert "Cannot find the Microsoft.Exchange session configuration" in str(wrong.value.reason)
    with pytest.raises(WSManFaultError):
        winrm(lab, "Microsoft.PowerShell", "PowerShell").open()


def test_script_text_is_refused_on_the_winrm_endpoint_too(lab: Lab) -> None:
    with winrm(lab) as pool:
        ps = PowerShell(pool)
        ps.add_script("Get-Content C:\\secret.txt")
        ps.invoke()
    assert ps.had_errors
    assert "no-language mode" in str(ps.streams.error[0])


def test_a_denied_account_gets_access_is_denied(tmp_path: Path) -> None:
    lab = start_lab(tmp_path, deny_winrm=True)
    try:
        with pytest.raises(WSManFaultError) as denied:
            winrm(lab).open()
        assert denied.value.code == 5 and "Access is denied." in str(denied.value.reason)
        with winrm(lab, "Microsoft.Exchange", "PowerShell") as pool:  # Exchange still works
            assert run(pool, "Get-TransportService", Identity="EX01").output
    finally:
        lab.stop()


def test_resolve_dns_name_and_test_connection(lab: Lab) -> None:
    with winrm(lab) as pool:
        found = run(pool, "Resolve-DnsName", Name="localhost")
        missing = run(pool, "Resolve-DnsName", Name="relay.branch.invalid")
        pinged = run(pool, "Test-Connection", ComputerName=["localhost"], Count=2)
        unknown = run(pool, "Test-Connection", ComputerName=["relay.branch.invalid"], Count=1)
    (record,) = found.output
    assert record.adapted_properties["IPAddress"] == "127.0.0.1"
    assert record.adapted_properties["Type"] == "A"
    assert str(missing.streams.error[0]) == "relay.branch.invalid : DNS name does not exist"
    assert not missing.had_errors  # non-terminating
    assert [p.adapted_properties["StatusCode"] for p in pinged.output] == [0, 0]
    assert "Testing connection to computer 'relay.branch.invalid' failed" in str(
        unknown.streams.error[0]
    )
