"""The 2002 escalation decision and bundle: what explains a failure locally, and the one file
written for support (0600, no secret, every section present)."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from remediate.core.errors import UsageError
from remediate.core.exchange import CredentialState, QueueInfo, SendConnector
from remediate.diagnose.escalation import (
    FORMAT,
    PROTOCOL_LOG,
    Escalation,
    default_path,
    local_causes,
    write_bundle,
)
from remediate.diagnose.events import group, parse_text
from remediate.diagnose.reachability import check_host
from tests.diagnose.test_reachability import closed_port, listener

CONNECTOR = SendConnector(
    "Outbound to Partner",
    guid="6f1d3a52-0000-4000-8000-000000000005",
    smart_hosts=("localhost",),
    dns_routing_enabled=False,
    credential=CredentialState.SET,
    port=2525,
    source_transport_servers=("EX01", "EX02"),
)
TIMED_OUT = (
    "441 4.4.1 Error encountered while communicating with primary target IP address: "
    '"Failed to connect. Winsock error code: 10060, Win32 error code: 10060." Attempted '
    "failover to alternate host, but that did not succeed."
)
REFUSED = TIMED_OUT.replace("10060", "10061")
EVENT_TEXT = """Log Name:      Application
Source:        MSExchangeTransport
Date:          11/20/2026 9:14:02 AM
Event ID:      2002
Task Category: SmtpSend
Level:         Warning
Computer:      EX01.contoso.lab
Description:
Send connector Outbound to Partner: an error occurred while connecting to 127.0.0.1:2525.
"""


def test_nothing_local_when_reachable_enabled_and_lasterror_is_a_timeout() -> None:
    with listener(b"220 relay ready\r\n") as port:
        checks = [check_host("localhost", port)]
    queue = QueueInfo("EX01\\5", status="Retry", message_count=2, last_error=TIMED_OUT)
    assert local_causes(CONNECTOR, [queue], checks) == []


def test_disabled_unreachable_and_refused_are_local_causes() -> None:
    checks = [check_host("127.0.0.1", closed_port()), check_host("relay.fabrikam.invalid", 25)]
    queue = QueueInfo("EX01\\5", status="Retry", message_count=2, last_error=REFUSED)
    found = local_causes(CONNECTOR.replace(enabled=False), [queue], checks)
    assert found[0].startswith("the connector is disabled")
    assert "nothing accepts connections" in found[1]
    assert "relay.fabrikam.invalid port 25: the name does not resolve" in found[2]
    assert found[3].startswith("queue EX01\\5: nothing accepts connections")


def test_a_lasterror_naming_a_setting_is_local_one_naming_nothing_is_not() -> None:
    with listener(b"220 relay ready\r\n") as port:
        checks = [check_host("localhost", port)]
    credential = QueueInfo("EX01\\4", last_error="454 4.7.0 Temporary authentication failure")
    (found,) = local_causes(CONNECTOR, [credential], checks)
    assert found.startswith("queue EX01\\4: the connector could not set up authentication")
    unknown = QueueInfo("EX01\\8", last_error="A matching connector cannot be found")
    assert local_causes(CONNECTOR, [unknown], checks) == []


def test_bundle_has_every_section_and_no_secret(tmp_path: Path) -> None:
    with listener(b"220 relay ready\r\n") as port:
        checks = [check_host("localhost", port)]
    queue = QueueInfo("EX01\\5", "fabrikam.example", status="Retry", message_count=2,
                      last_error=TIMED_OUT)  # fmt: skip
    events = group(parse_text(EVENT_TEXT + "\n" + EVENT_TEXT))
    escalation = Escalation(
        CONNECTOR, [queue], events, checks, generated_at=datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    )
    path = write_bundle(escalation, tmp_path / "case.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["format"] == FORMAT and data["generated_at"] == "2026-11-20T09:30:00+00:00"
    assert data["connector"]["Name"] == "Outbound to Partner"
    assert data["connector"]["AuthenticationCredential"] == "set"  # never a user name
    assert data["connector"]["Port"] == 2525
    (q,) = data["queues"]
    assert (q["identity"], q["cause"], q["message_count"]) == ("EX01\\5", "timeout", 2)
    (event,) = data["events"]
    assert (event["event_id"], event["count"]) == (2002, 2)
    assert event["remote_endpoint"] == "127.0.0.1:2525"
    assert data["reachability"]["hosts"][0]["outcome"] == "banner"
    assert "not from the transport servers" in data["reachability"]["checked_from"]
    assert data["protocol_log"]["path"] == PROTOCOL_LOG
    assert data["protocol_log"]["servers"] == ["EX01", "EX02"]
    assert any("Test-NetConnection" in item for item in data["for_support"])
    assert "password" not in path.read_text().lower()


def test_default_path_is_under_the_state_dir_and_private(tmp_path: Path) -> None:
    environ = {"XDG_STATE_HOME": str(tmp_path / "state")}
    path = write_bundle(Escalation(CONNECTOR), environ=environ)
    assert path.parent == tmp_path / "state" / "remediate" / "escalations"
    assert path.name.startswith("2002-Outbound-to-Partner-") and path.suffix == ".json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert default_path("a/b\\c", environ).name.startswith("2002-a-b-c-")


def test_existing_file_is_replaced_and_made_private(tmp_path: Path) -> None:
    target = tmp_path / "case.json"
    target.write_text("old")
    target.chmod(0o644)
    write_bundle(Escalation(CONNECTOR), target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert json.loads(target.read_text())["connector"]["Name"] == CONNECTOR.name


def test_unwritable_path_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"the escalation file: the directory .*missing"):
        write_bundle(Escalation(CONNECTOR), tmp_path / "missing" / "case.json")
