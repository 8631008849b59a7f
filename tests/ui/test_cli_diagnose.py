"""remediate diagnose through the installed executable: files of each format, stdin, --json,
nothing readable, and the live queue diagnosis against the lab over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.lab_helpers import start_lab

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).parent.parent / "fixtures" / "events"
EXE = Path(sys.executable).parent / "remediate"


def remediate(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    assert EXE.exists(), f"the remediate executable is not installed at {EXE}"
    return subprocess.run(
        [str(EXE), *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def test_an_export_with_both_events_names_both_playbooks() -> None:
    done = remediate("diagnose", str(FIXTURES / "export.xml"))
    assert done.returncode == 0, done.stderr
    assert "playbook: smarthost-auth-credential" in done.stdout
    assert "playbook: send-connection-error" in done.stdout
    assert "event 2016 x3  connector 'Outbound to Relay'" in done.stdout
    assert "remediate fix 2002 --connector 'Outbound to Partner'" in done.stdout
    assert done.stdout.count("not read:") == 2


@pytest.mark.parametrize("name", ["events.csv", "events-de.csv", "pasted-de.txt", "export.xml"])
def test_json_for_each_format(name: str) -> None:
    done = remediate("diagnose", str(FIXTURES / name), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    by_event = {e["event_id"]: e for e in report["events"]}
    assert by_event[2016]["inputs"]["connector"] == "Outbound to Relay"
    assert by_event[2016]["inputs"]["smart_hosts"] == ["relay.contoso.lab"]
    assert by_event[2002]["inputs"] == {
        "connector": "Outbound to Partner",
        "protocol_logging": "Verbose",
        "failed_host": "192.0.2.25",
        "failed_port": 2525,
    }


def test_pasted_text_on_stdin() -> None:
    text = (FIXTURES / "pasted-en.txt").read_text()
    done = remediate("diagnose", "-", stdin=text)
    assert done.returncode == 0
    assert "event 2016 x2" in done.stdout


def test_nothing_readable_is_an_error() -> None:
    done = remediate("diagnose", "-", stdin="just a note from the helpdesk\n")
    assert done.returncode == 1
    assert done.stderr.startswith("remediate: error: no readable event 2016 or 2002")
    assert "not read: stdin" in done.stdout


def test_missing_file() -> None:
    done = remediate("diagnose", "nope.xml")
    assert done.returncode == 2
    assert "nope.xml: cannot be read" in done.stderr


def test_live_queue_diagnosis_against_the_lab(tmp_path: Path) -> None:
    lab = start_lab(tmp_path, auth="ntlm")
    try:
        # the seeded 2002 connector's queue has failed against a closed port
        done = remediate(
            "diagnose",
            "--connector",
            "Outbound to Partner",
            "--server",
            lab.endpoint_url,
            "--auth",
            "ntlm",
            "--user",
            lab.admin_user,
            "--password-stdin",
            "--json",
            stdin=lab.admin_password + "\n",
        )
        assert done.returncode == 0, done.stderr
        live = json.loads(done.stdout)["queues"]
        (queue,) = live["queues"]
        assert queue["cause"] == "connection-refused"
        assert "Winsock error code: 10061" in queue["last_error"]
        unknown = remediate(
            "diagnose",
            "--connector",
            "No Such Connector",
            "--server",
            lab.endpoint_url,
            "--auth",
            "ntlm",
            "--user",
            lab.admin_user,
            "--password-stdin",
            stdin=lab.admin_password + "\n",
        )
        assert unknown.returncode != 0
        assert "No Such Connector" in unknown.stderr
        assert len(unknown.stderr.strip().splitlines()) <= 2
    finally:
        lab.stop()
