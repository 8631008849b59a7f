"""`remediate fix 2002` in-process against a real Lab: questionary runs for real on a
prompt_toolkit pipe input (the keyboard is the only stand-in). Each seeded 2002 scenario is
diagnosed and fixed until its queue drains; verbose logging is back to None afterwards; when
nothing local explains the failure the escalation file is written."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from remediate.core.errors import UsageError
from remediate.lab.org import Queue
from remediate.lab.seed import BRANCH, LEGACY, PARTNER
from remediate.lab.server import Lab
from remediate.ui.wizard.flow import WizardOptions
from tests.wizard.helpers import CLEAR_LINE, DOWN, ENTER, Run, lab_options

NO = "n"


def options(lab: Lab, connector: str, **changes: object) -> WizardOptions:
    return lab_options(lab, playbook="2002", connector=connector, **changes)


def smtp_port(lab: Lab) -> int:
    assert lab.smart_host is not None
    return lab.smart_host.port


def received(lab: Lab) -> int:
    assert lab.smart_host is not None
    return len(lab.smart_host.messages)


def queue(lab: Lab, identity: str) -> Queue:
    (found,) = [q for q in lab.organization.queues() if q.identity == identity]
    return found


def enable_through_psrp(lab: Lab, name: str) -> None:
    """Enable a connector through the lab's real PSRP endpoint, as an admin would."""
    wsman = WSMan(
        lab.host,
        port=lab.port,
        path="PowerShell",
        ssl=False,
        auth="basic",
        username=lab.admin_user,
        password=lab.admin_password,
        encryption="never",
    )
    with RunspacePool(wsman, configuration_name="Microsoft.Exchange") as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Set-SendConnector").add_parameter("Identity", name)
        ps.add_parameter("Enabled", True).add_parameter("Confirm", False)
        ps.invoke()
        assert not ps.had_errors and not ps.streams.error, ps.streams.error


def test_closed_port_is_found_fixed_and_logging_turned_back_off(
    lab: Lab, drive: Callable[..., Run], tmp_path: Path
) -> None:
    port = smtp_port(lab)
    keys = (
        ENTER  # connector: preselected
        + CLEAR_LINE + f"{port}" + ENTER  # port
        + ENTER  # smart hosts: keep localhost
        + ENTER  # verbose logging for the retry: yes
        + ENTER  # action: apply
        + ENTER  # after the watch: turn verbose logging back off (a change of its own)
    )  # fmt: skip
    run = drive(options(lab, PARTNER), keys)

    assert run.status == 0, run.out + run.err
    assert "Send connector 'Outbound to Partner':" in run.out
    assert "source transport servers: EX01" in run.out
    assert "not from the transport servers" in run.out
    assert "[FAIL] reachability: localhost:" in run.out and "refused" in run.out
    assert "(cause: connection-refused)" in run.out
    assert f"localhost:{port} from this machine: banner" in run.out
    assert f"-Port {port}" in run.out and "-ProtocolLoggingLevel 'Verbose'" in run.out
    assert "Mail flows: " in run.out
    assert "Protocol logging: None." in run.out
    partner = lab.organization.connector(PARTNER)
    assert (partner.port, partner.protocol_logging_level) == (port, "None")
    audit_log = tmp_path / "state" / "remediate" / "audit.log"
    changes = [json.loads(line)["changes"] for line in audit_log.read_text().splitlines()]
    logging = [c["ProtocolLoggingLevel"] for c in changes if "ProtocolLoggingLevel" in c]
    assert logging == [{"old": "None", "new": "Verbose"}, {"old": "Verbose", "new": "None"}]
    assert queue(lab, "EX01\\5").messages == [] and received(lab) == 2


def test_unresolved_smart_host_is_replaced(lab: Lab, drive: Callable[..., Run]) -> None:
    keys = (
        ENTER  # connector
        + ENTER  # port: keep
        + CLEAR_LINE + "localhost" + ENTER  # smart hosts
        + NO  # no verbose logging this time
        + ENTER  # apply
    )  # fmt: skip
    run = drive(options(lab, BRANCH), keys)

    assert run.status == 0, run.out + run.err
    assert "not-resolved: the name does not resolve" in run.out
    assert "(cause: dns)" in run.out
    assert "-SmartHosts 'localhost'" in run.out and "ProtocolLoggingLevel" not in run.out
    assert "Mail flows: " in run.out
    assert lab.organization.connector(BRANCH).smart_hosts == ["localhost"]
    assert queue(lab, "EX01\\7").messages == []


def test_disabled_connector_is_enabled_without_touching_routing(
    lab: Lab, drive: Callable[..., Run]
) -> None:
    before = lab.organization.connector(LEGACY)
    keys = ENTER + ENTER + NO + ENTER  # connector, enable: yes, no verbose logging, apply
    run = drive(options(lab, LEGACY), keys)

    assert run.status == 0, run.out + run.err
    assert "enabled:                  NO" in run.out
    assert "[FAIL] enabled: the connector is disabled" in run.out
    assert "[ok]   reachability: localhost:" in run.out
    assert "Smart host port:" not in run.out  # reachable: routing is not questioned
    after = lab.organization.connector(LEGACY)
    assert after.enabled and (after.port, after.smart_hosts) == (before.port, before.smart_hosts)
    assert queue(lab, "EX01\\8").messages == [] and received(lab) == 2


def test_nothing_local_explains_it_so_the_escalation_file_is_written(
    lab: Lab, drive: Callable[..., Run], tmp_path: Path
) -> None:
    """Legacy enabled behind the wizard's back: reachable, enabled, but its queue still shows
    an error naming no setting, so the wizard offers escalation (then retries with logging)."""
    enable_through_psrp(lab, LEGACY)
    target = tmp_path / "case-2002.json"
    event = (
        f"Send connector {LEGACY}: an error occurred while connecting to "
        f"127.0.0.1:{smtp_port(lab)}.\n"
    )
    keys = (
        ENTER  # connector
        + ENTER  # verbose logging: yes
        + ENTER  # escalate: yes
        + CLEAR_LINE + str(target) + ENTER  # escalation file
        + ENTER  # apply
        + ENTER  # after the watch: verbose logging back off
    )  # fmt: skip
    run = drive(options(lab, LEGACY, event_text=event), keys)

    assert run.status == 0, run.out + run.err
    assert "[warn] escalation: nothing checked here explains the failure" in run.out
    assert "[warn] events: related Application-log events: 2002 x1" in run.out
    assert f"Escalation file written: {target}" in run.out
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    bundle = json.loads(target.read_text())
    assert bundle["connector"]["Name"] == LEGACY and bundle["connector"]["Enabled"] is True
    assert bundle["queues"][0]["identity"] == "EX01\\8"
    assert bundle["events"][0]["event_id"] == 2002
    assert bundle["reachability"]["hosts"][0]["outcome"] == "banner"
    assert lab.admin_password not in target.read_text()
    assert lab.relay_password not in target.read_text()
    assert "Mail flows: " in run.out
    assert lab.organization.connector(LEGACY).protocol_logging_level == "None"


def test_cancel_changes_nothing(lab: Lab, drive: Callable[..., Run]) -> None:
    before = lab.organization.connector(PARTNER)
    keys = ENTER + ENTER + ENTER + ENTER + DOWN + DOWN + DOWN + ENTER  # ... action: cancel
    run = drive(options(lab, PARTNER), keys)
    assert run.status == 1, run.out + run.err
    assert "Cancelled: nothing was changed." in run.out
    assert lab.organization.connector(PARTNER) == before


def test_a_bad_port_is_one_clear_error(lab: Lab, drive: Callable[..., Run]) -> None:
    before = lab.organization.connector(PARTNER)
    with pytest.raises(UsageError, match=r"^port: '99999' is not a port number \(1-65535\)$"):
        drive(options(lab, PARTNER), ENTER + CLEAR_LINE + "99999" + ENTER)
    assert lab.organization.connector(PARTNER) == before
