"""Issue 18 end to end: the INSTALLED ``remediate`` against the lab over real HTTP, reading the
transport server's own view through its default WinRM endpoint (/wsman, Microsoft.PowerShell)
with the profile's login: Test-NetConnection from the server, the Send protocol log, the
Application log; and the fallback to this machine's view when the endpoint denies access.

The lab's server side has its own network path (``Lab.set_server_route``): a port the
workstation finds closed can lead the server to the smart host, and the reverse, as a
firewall or NAT between them would.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypsrp.complex_objects import PSCredential
from pypsrp.powershell import PowerShell, RunspacePool

from remediate.lab.certs import LabCA
from remediate.lab.server import Address, Lab
from remediate.lab.smarthost import SmartHost
from tests.e2e.conftest import PARTNER, PROFILE, RELAY, Cli
from tests.lab.lab_helpers import lab_wsman, start_lab
from tests.schema_check import checked

pytestmark = [pytest.mark.e2e, pytest.mark.keyring]

ARCHIVE = "Outbound to Archive"


@pytest.fixture
def view_lab(tmp_path: Path) -> Iterator[Lab]:
    """A seeded lab (NTLM) whose connector changes reach its transport at once."""
    lab = start_lab(tmp_path / "lab", auth="ntlm", config_delay=0)
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def denied_lab(tmp_path: Path) -> Iterator[Lab]:
    lab = start_lab(tmp_path / "lab", auth="ntlm", config_delay=0, deny_winrm=True)
    try:
        yield lab
    finally:
        lab.stop()


def profile(cli: Cli, lab: Lab) -> Cli:
    cli.save_profile(lab.endpoint_url, lab.admin_user, lab.admin_password)
    cli.save_relay(lab.relay_user, lab.relay_password)
    return cli


def diagnose(cli: Cli, lab: Lab, connector: str) -> dict[str, Any]:
    done = cli(
        "diagnose", "--profile", PROFILE, "--connector", connector,
        "--winrm-url", lab.winrm_url, "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr + done.stdout
    report: dict[str, Any] = checked("diagnose", done.stdout)["queues"]
    return report


def set_connector(lab: Lab, name: str, **params: Any) -> None:
    """Set-SendConnector straight on the lab's Exchange endpoint (bare pypsrp, as an admin's
    shell would), so the lab's own rules apply."""
    with RunspacePool(lab_wsman(lab), configuration_name="Microsoft.Exchange") as pool:
        pool.exchange_keys()
        ps = PowerShell(pool)
        ps.add_cmdlet("Set-SendConnector").add_parameter("Identity", name)
        for key, value in params.items():
            ps.add_parameter(key, value)
        ps.add_parameter("Confirm", False)
        ps.invoke()
        assert not ps.had_errors and not ps.streams.error, [str(e) for e in ps.streams.error]


def retry(lab: Lab, identity: str) -> None:
    """The transport's own retry of a queue (its retry timer), then wait for the attempt."""
    assert lab.organization.retry_queue(identity)
    lab.organization.wait_for_deliveries()


# --- reachability from the server first -------------------------------------------------------


def test_workstation_blocked_server_fine_proposes_no_routing_change(
    cli: Cli, view_lab: Lab, tmp_path: Path
) -> None:
    lab = view_lab
    closed, smtp = lab.organization.closed_port, lab.smtp_address.port
    # EX01's path to the partner's port leads to the smart host; this machine finds it closed
    lab.set_server_route(Address("127.0.0.1", closed), Address("127.0.0.1", smtp))
    profile(cli, lab)

    report = diagnose(cli, lab, PARTNER)

    view = report["reachability"]["server_view"]
    assert view["server"] == "EX01"
    [server_check] = view["server_checks"]
    assert (server_check["port"], server_check["tcp_succeeded"]) == (closed, True)
    assert (server_check["dns"], server_check["ping"]) == (["127.0.0.1"], True)
    assert [h["outcome"] for h in report["reachability"]["hosts"]] == ["refused"]
    assert view["routing_suspect"] is False
    assert "answers from EX01" in view["verdict"] and "no routing change" in view["verdict"]
    assert not any("does not answer" in c for c in report["local_causes"])
    assert any("retry the queue" in c for c in report["local_causes"])

    text = cli(
        "diagnose", "--profile", PROFILE, "--connector", PARTNER, "--winrm-url", lab.winrm_url
    )
    assert text.returncode == 0, text.stderr
    assert "reachability from EX01 (the server that sends" in text.stdout
    assert f"localhost:{closed}  TCP connect succeeded" in text.stdout
    assert "reachability from this machine" in text.stdout

    # the wizard: no port or smart-host question, verbose logging for the retry, the
    # protocol log read and explained afterwards, logging back off, mail flows
    answers = tmp_path / "answers.yaml"
    answers.write_text(
        f"event: 2002\nconnection: {PROFILE}\nconnector: {PARTNER}\n"
        "verbose_logging: true\naction: apply\nlogging_off: true\n",
        encoding="utf-8",
    )
    done = cli("fix", "--answers", str(answers), "--winrm-url", lab.winrm_url, "--queue-wait", "15")
    assert done.returncode == 0, done.stderr + done.stdout
    out = done.stdout
    assert "[ok]   from EX01:" in out and "[FAIL] reachability:" in out
    assert "The smart host does not answer as configured" not in out
    assert not re.search(r"-Port \d", out) and "-SmartHosts" not in out
    assert f"Send protocol log on EX01 for '{PARTNER}':" in out
    assert ": delivered" in out
    assert "Mail flows" in out
    after = cli.connector(PARTNER)
    assert (after["Port"], after["ProtocolLoggingLevel"]) == (closed, "None")
    assert lab.smart_host is not None and len(lab.smart_host.messages) == 2
    for run in cli.runs:  # the admin and relay passwords are printed nowhere
        assert lab.admin_password not in run.stdout + run.stderr
        assert lab.relay_password not in run.stdout + run.stderr


def test_server_blocked_workstation_fine_blames_the_servers_path(cli: Cli, view_lab: Lab) -> None:
    lab = view_lab
    closed, smtp = lab.organization.closed_port, lab.smtp_address.port
    # a firewall on EX01's side: its path to the smart host ends at a closed port
    lab.set_server_route(Address("127.0.0.1", smtp), Address("127.0.0.1", closed))
    profile(cli, lab)

    report = diagnose(cli, lab, ARCHIVE)

    view = report["reachability"]["server_view"]
    [server_check] = view["server_checks"]
    assert (server_check["port"], server_check["tcp_succeeded"]) == (smtp, False)
    assert [h["outcome"] for h in report["reachability"]["hosts"]] == ["banner"]
    assert view["routing_suspect"] is True
    assert "does not answer from EX01" in view["verdict"]
    assert "(it answers from this machine)" in view["verdict"]
    assert f"smart host localhost port {smtp} does not answer from EX01" in report["local_causes"]


def test_the_2002_wizard_logs_the_retry_after_exchanges_delay_and_explains_it(
    cli: Cli, tmp_path: Path
) -> None:
    """Exchange applies a change after a delay (the lab's default 2 s): the first retry still
    uses the old port and logs nothing; the watch retries until the new settings (the right
    port, verbose logging) are in effect; then the log is read, explained, logging goes off."""
    lab = start_lab(tmp_path / "lab", auth="ntlm")
    try:
        assert lab.config_delay > 0
        profile(cli, lab)
        smtp = lab.smtp_address.port
        answers = tmp_path / "answers.yaml"
        answers.write_text(
            f"event: 2002\nconnection: {PROFILE}\nconnector: {PARTNER}\nport: {smtp}\n"
            "verbose_logging: true\naction: apply\nlogging_off: true\n",
            encoding="utf-8",
        )
        done = cli(
            "fix", "--answers", str(answers), "--winrm-url", lab.winrm_url, "--queue-wait", "20"
        )
        out = done.stdout
        assert done.returncode == 0, done.stderr + out
        assert "[FAIL] from EX01:" in out  # the closed port, seen from the server
        closed = lab.organization.closed_port
        # the seeded 2002, read from EX01's Application log (no --event-file given)
        assert "related Application-log events: 2002 x1 " in out
        assert f"127.0.0.1:{closed}" in out.split("related Application-log events:")[1]
        assert "The smart host does not answer as configured" in out
        assert f"-Port {smtp}" in out
        assert "Still failing: waiting for Exchange to pick up the change" in out
        log = out.split(f"Send protocol log on EX01 for '{PARTNER}':")[1]
        assert ": delivered" in log.split("Protocol logging:")[0]
        assert f"127.0.0.1:{smtp} went through" in log
        assert "Mail flows" in out
        assert cli.connector(PARTNER)["ProtocolLoggingLevel"] == "None"
    finally:
        lab.stop()


# --- the Send protocol log ---------------------------------------------------------------------


def test_protocol_log_explains_a_535(cli: Cli, view_lab: Lab) -> None:
    lab = view_lab
    set_connector(
        lab,
        RELAY,
        SmartHostAuthMechanism="BasicAuth",
        AuthenticationCredential=PSCredential(username=lab.relay_user, password="not-the-one"),
        ProtocolLoggingLevel="Verbose",
    )
    retry(lab, "EX01\\4")
    profile(cli, lab)

    report = diagnose(cli, lab, RELAY)

    sessions = report["reachability"]["server_view"]["protocol_log"]
    assert sessions, report
    assert report["reachability"]["server_view"]["unchecked_servers"] == ["EX02"]
    last = sessions[-1]
    assert last["outcome"] == "auth-rejected"
    assert last["failed_reply"].startswith("535")
    assert "AUTH LOGIN" in " ".join(last["offered"])
    assert "refused the login" in last["explanation"]
    printed = "\n".join(cli.runs[-1].stdout.splitlines())
    assert "not-the-one" not in printed  # the log masks the credentials


def test_protocol_log_explains_a_missing_auth_login(
    cli: Cli, view_lab: Lab, tmp_path: Path
) -> None:
    lab = view_lab
    no_auth = SmartHost(
        ca=LabCA.create(),
        relay_user=lab.relay_user,
        relay_password=lab.relay_password,
        auth=False,
    ).start()
    try:
        set_connector(
            lab,
            RELAY,
            Port=no_auth.port,
            SmartHostAuthMechanism="BasicAuth",
            AuthenticationCredential=PSCredential(
                username=lab.relay_user, password=lab.relay_password
            ),
            ProtocolLoggingLevel="Verbose",
        )
        retry(lab, "EX01\\4")
    finally:
        no_auth.stop()
    profile(cli, lab)

    report = diagnose(cli, lab, RELAY)

    last = report["reachability"]["server_view"]["protocol_log"][-1]
    assert last["outcome"] == "auth-login-not-offered"
    assert "STARTTLS" not in last["offered"]  # the EHLO after STARTTLS is the one kept
    assert not any(o.upper().startswith("AUTH") for o in last["offered"])
    assert "offered no AUTH LOGIN after STARTTLS" in last["explanation"]
    queue = report["queues"][0]
    assert "451 5.7.3 Require basic authentication" in queue["last_error"]


# --- the Application log --------------------------------------------------------------------


def test_diagnose_since_scans_the_servers_application_log(cli: Cli, view_lab: Lab) -> None:
    lab = view_lab
    profile(cli, lab)

    done = cli(
        "diagnose", "--profile", PROFILE, "--since", "2h", "--winrm-url", lab.winrm_url, "--json"
    )

    assert done.returncode == 0, done.stderr + done.stdout
    report = checked("diagnose", done.stdout)
    assert report["scanned"]["server"] == "EX01"
    found = {(e["event_id"], e["connector"], e["playbook"]) for e in report["events"]}
    assert found == {
        (2016, RELAY, "smarthost-auth-credential"),
        (2002, PARTNER, "send-connection-error"),
    }  # EX02's own 2016 is in EX02's log, not EX01's
    by_id = {e["event_id"]: e for e in report["events"]}
    assert by_id[2002]["inputs"]["failed_port"] == lab.organization.closed_port
    assert by_id[2016]["mechanism"] == "ExchangeAuth"
    assert {e["computer"] for e in report["events"]} == {"EX01.contoso.lab"}
    assert "2 event(s) 2016/2002 in the Application log of EX01" in done.stderr


def test_diagnose_since_rejects_a_bad_age(cli: Cli, view_lab: Lab) -> None:
    profile(cli, view_lab)
    done = cli("diagnose", "--profile", PROFILE, "--since", "2 weeks")
    assert done.returncode == 2
    assert "--since '2 weeks': use a number and m, h or d" in done.stderr
    assert "Traceback" not in done.stderr


# --- permissions ------------------------------------------------------------------------------


def test_denied_winrm_endpoint_falls_back_with_a_note(cli: Cli, denied_lab: Lab) -> None:
    lab = denied_lab
    profile(cli, lab)

    report = diagnose(cli, lab, PARTNER)

    view = report["reachability"]["server_view"]
    assert view["server_checks"] == [] and view["server"] is None
    note = view["server_view_note"]
    assert "denied access to administrator@contoso.lab" in note
    assert note.endswith("falling back to this machine's view")
    assert [h["outcome"] for h in report["reachability"]["hosts"]] == ["refused"]
    assert view["routing_suspect"] is False
    assert view["verdict"].startswith("only this machine was checked")

    done = cli("diagnose", "--profile", PROFILE, "--since", "1h", "--winrm-url", lab.winrm_url)
    assert done.returncode == 5  # ConnectionFailed
    assert "denied access" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2
    assert all(lab.admin_password not in r.stdout + r.stderr for r in cli.runs)
