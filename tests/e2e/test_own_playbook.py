"""An admin's own playbook, YAML only (issue 14): a third documented MSExchangeTransport
Send-connector event, 12014 (no certificate for the connector's FQDN; sources in the
playbook's header), dropped into $XDG_CONFIG_HOME/remediate/playbooks/ with no Python
change, then listed, read from an event, planned, rendered and applied (and undone) through
the INSTALLED command against the lab over real HTTP."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from remediate.core.status import ExitStatus
from remediate.lab.server import Lab
from tests.e2e.conftest import PROFILE, RELAY, Cli

pytestmark = [pytest.mark.e2e, pytest.mark.keyring]

OWN = Path(__file__).resolve().parent.parent / "fixtures" / "playbooks"
PLAYBOOK = OWN / "12014-starttls-certificate.yaml"
# A name on the lab's SMTP certificate (lab/seed.py: mail.<DOMAIN> on every server's).
NAME_ON_CERTIFICATE = "mail.contoso.lab"
# Event Viewer's "Copy details as text" of a 12014, shaped as the published capture cited in
# the playbook, naming the lab's Send connector.
EVENT = """\
Log Name:      Application
Source:        MSExchangeTransport
Date:          12/1/2026 9:35:58 AM
Event ID:      12014
Task Category: TransportService
Level:         Error
Computer:      EX01.contoso.lab
Description:
Microsoft Exchange could not find a certificate that contains the domain name relay.contoso.lab
in the personal store on the local computer. Therefore, it is unable to support the STARTTLS
SMTP verb for the connector Outbound to Relay with a FQDN parameter of relay.contoso.lab. If
the connector's FQDN is not specified, the computer's FQDN is used. Verify the connector
configuration and the installed certificates to make sure that there is a certificate with a
domain name for that FQDN. If this certificate exists, run Enable-ExchangeCertificate
-Services SMTP to make sure that the Microsoft Exchange Transport service has access to the
certificate key.
"""


def install(cli: Cli, source: Path = PLAYBOOK) -> Path:
    """The playbook copied where remediate looks for an admin's own."""
    directory = Path(cli.env["XDG_CONFIG_HOME"]) / "remediate" / "playbooks"
    directory.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(source, directory / source.name))


def test_own_playbook_is_listed_read_and_planned(cli: Cli, tmp_path: Path) -> None:
    path = install(cli)

    listing = cli("playbooks")
    assert listing.returncode == 0, listing.stderr
    assert "12014  starttls-certificate-fqdn" in listing.stdout
    assert f"your own ({path.parent}): 12014" in listing.stdout
    books = {b["event"]: b for b in json.loads(cli("playbooks", "--json").stdout)}
    assert books[12014]["file"] == str(path) and books[12014]["inputs"] == ["fqdn"]

    events = tmp_path / "event.txt"
    events.write_text(EVENT)
    done = cli("diagnose", "--json", str(events))
    assert done.returncode == 0, done.stderr
    [event] = json.loads(done.stdout)["events"]
    assert event["event_id"] == 12014 and event["connector"] == RELAY
    assert event["playbook"] == "starttls-certificate-fqdn"
    assert event["fields"] == {
        "missing_domain": "relay.contoso.lab",
        "connector": RELAY,
        "announced_fqdn": "relay.contoso.lab",
    }

    script = tmp_path / "fix.ps1"
    done = cli(
        "plan", "12014", "--connector", RELAY, "--fqdn", NAME_ON_CERTIFICATE, "-o", str(script)
    )
    assert done.returncode == 0, done.stderr
    text = script.read_text()
    assert "# Playbook:  starttls-certificate-fqdn (event 12014)" in text
    command = f"Set-SendConnector -Identity '{RELAY}' -Fqdn '{NAME_ON_CERTIFICATE}' -Confirm:$false"
    assert command in text.splitlines()
    assert "Documented action: match-certificate" in text

    refused = cli("plan", "12014", "--connector", RELAY, "--fqdn", "10.0.0.5")
    assert refused.returncode == 2
    assert refused.stderr.startswith("remediate: error: --fqdn: '10.0.0.5' is an IP address")


def test_own_playbook_applies_and_undoes_against_the_lab(profiled: Cli, relay_lab: Lab) -> None:
    install(profiled)
    before = profiled.connector(RELAY)
    assert before["Fqdn"] != NAME_ON_CERTIFICATE

    done = profiled(
        "apply", "12014", "--profile", PROFILE, "--connector", RELAY,
        "--fqdn", NAME_ON_CERTIFICATE, "--yes", "--json",
    )  # fmt: skip

    run = json.loads(done.stdout)
    # The seeded relay connector also carries event 2016's fault (ExchangeServer auth against
    # a non-Exchange relay), so its queues still fail after the Fqdn change: apply applies the
    # change and says mail still fails (6), as the README's exit-status table promises.
    assert done.returncode == ExitStatus.FAILED, done.stderr
    assert "Mail still fails" in done.stderr and run["exit_status"] == ExitStatus.FAILED
    assert run["result"] == "applied" and run["plan"]["event_id"] == 12014
    [change] = [s for s in run["plan"]["steps"] if s["cmdlet"] == "Set-SendConnector"]
    assert [p["name"] for p in change["parameters"]] == ["Identity", "Fqdn", "Confirm"]
    assert run["before"]["Fqdn"] == before["Fqdn"]
    assert run["after"]["Fqdn"] == NAME_ON_CERTIFICATE
    assert profiled.connector(RELAY)["Fqdn"] == NAME_ON_CERTIFICATE
    audited = [
        a for a in profiled.audit_lines() if a.get("playbook") == "starttls-certificate-fqdn"
    ]
    assert audited and {a["connector"] for a in audited} == {RELAY}
    assert any("Fqdn" in json.dumps(a) for a in audited)

    [backup] = profiled.backups()
    assert run["backup"] == str(backup)
    undone = profiled("undo", str(backup), "--profile", PROFILE, "--yes")
    assert undone.returncode == 0, undone.stderr
    assert profiled.connector(RELAY)["Fqdn"] == before["Fqdn"]


def test_a_broken_own_playbook_is_one_line_with_file_and_line(cli: Cli, tmp_path: Path) -> None:
    broken = tmp_path / "12014-starttls-certificate.yaml"
    broken.write_text(PLAYBOOK.read_text().replace("type: domain", "type: fqdn"))
    path = install(cli, broken)
    line = next(n for n, t in enumerate(broken.read_text().splitlines(), 1) if "type: fqdn" in t)
    for args in (("playbooks",), ("plan", "2016", "--connector", RELAY, "--port", "587")):
        done = cli(*args)
        assert done.returncode == 3 and done.stdout == ""
        assert done.stderr.splitlines() == [
            f"remediate: error: {path}:{line}: inputs[0].type: 'fqdn' is not a type; use one "
            "of bool, choice, domain, flag, host, hosts, int, port, text"
        ]


def test_the_wizard_asks_the_playbooks_own_questions(
    profiled: Cli, relay_lab: Lab, tmp_path: Path
) -> None:
    """No flow module: the wizard runs the YAML's checks and asks its declared inputs (the
    answers file answers ``fqdn``, the input's name)."""
    install(profiled)
    answers = tmp_path / "answers.yaml"
    answers.write_text(
        f"event: '12014'\nconnection: {PROFILE}\nconnector: {RELAY}\n"
        f"fqdn: {NAME_ON_CERTIFICATE}\naction: apply\nundo: false\n",
        encoding="utf-8",
    )
    done = profiled("fix", "--answers", str(answers), "--queue-wait", "2")

    assert "Diagnosis (nothing has been changed):" in done.stdout, done.stderr
    assert "Probing smart host" not in done.stdout  # the 2016 playbook's check, not this one's
    assert "[ok]   TLS: RequireTLS off" in done.stdout  # the YAML's "configuration" check
    assert "[FAIL] queue EX01\\4: 3 waiting;" in done.stdout  # and its "queue-last-error"
    assert f"-Fqdn '{NAME_ON_CERTIFICATE}'" in done.stdout
    assert "Changed Fqdn: (none) -> mail.contoso.lab" in done.stdout
    # the seeded connector's 2016 fault (ExchangeServer to a non-Exchange host) stays: 6
    assert done.returncode == 6, done.stderr
    assert profiled.connector(RELAY)["Fqdn"] == NAME_ON_CERTIFICATE
