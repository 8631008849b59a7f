"""Event Viewer .evtx files: written by tests/evtx_writer.py from libyal's documentation of the
format, read back first by the `evtx` package alone (the independent reader), then through
remediate's intake (diagnose FILE.evtx, fix --event-file FILE.evtx). The `evtx` package is the
test command's extra: when it is missing these tests fail, they do not skip."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import evtx
import pytest

from remediate.core.errors import UsageError
from remediate.diagnose.events import parse_file
from tests.evtx_writer import Event, evtx_bytes

EXE = Path(sys.executable).parent / "remediate"
NAME = "发往中继 Relay"
EVENTS = [
    Event(6005, ["ignored"], datetime(2026, 11, 22, 9, 0, 0, tzinfo=UTC), provider="EventLog"),
    Event(
        2016,
        ["Unsupported", NAME, "Login", "SMTPSVC/relay.contoso.lab", "EX01$"],
        datetime(2026, 11, 22, 10, 1, 2, tzinfo=UTC),
    ),
    Event(2002, [NAME, "192.0.2.25:2525"], datetime(2026, 11, 22, 10, 5, 9, tzinfo=UTC)),
]


@pytest.fixture
def evtx_file(tmp_path: Path) -> Path:
    path = tmp_path / "Application.evtx"
    path.write_bytes(evtx_bytes(EVENTS))
    return path


def test_the_evtx_package_reads_what_the_writer_wrote(evtx_file: Path) -> None:
    records = list(evtx.PyEvtxParser(str(evtx_file), number_of_threads=1).records())
    assert [r["event_record_id"] for r in records] == [1, 2, 3]
    second = records[1]["data"]
    assert '<Provider Name="MSExchangeTransport">' in second
    assert '<EventID Qualifiers="49156">2016</EventID>' in second
    assert '<TimeCreated SystemTime="2026-11-22T10:01:02' in second
    assert f"<Data>{NAME}</Data>" in second and "<Computer>EX01.contoso.lab</Computer>" in second


def test_an_evtx_file_is_read_into_the_event_model(evtx_file: Path) -> None:
    records = parse_file(evtx_file)
    assert [r.event_id for r in records] == [2016, 2002]  # the EventLog event is not kept
    assert all(r.ok for r in records)
    r2016, r2002 = records
    assert (r2016.status, r2016.connector, r2016.mechanism) == ("Unsupported", NAME, "Login")
    assert (r2016.target_server, r2016.user) == ("relay.contoso.lab", "EX01$")
    assert (r2002.connector, r2002.remote_endpoint) == (NAME, "192.0.2.25:2525")
    assert [r.time for r in records] == [
        datetime(2026, 11, 22, 10, 1, 2),
        datetime(2026, 11, 22, 10, 5, 9),
    ]
    assert {r.computer for r in records} == {"EX01.contoso.lab"}
    assert {r.provider for r in records} == {"MSExchangeTransport"}


def test_the_signature_decides_not_the_name(tmp_path: Path) -> None:
    path = tmp_path / "saved.txt"
    path.write_bytes(evtx_bytes(EVENTS[1:2]))
    assert [r.event_id for r in parse_file(path)] == [2016]


def test_an_evtx_without_exchange_events_says_so(tmp_path: Path) -> None:
    path = tmp_path / "System.evtx"
    path.write_bytes(evtx_bytes(EVENTS[:1]))
    with pytest.raises(
        UsageError, match=r"1 event\(s\) in the file, none from MSExchangeTransport"
    ):
        parse_file(path)


def test_a_broken_evtx_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.evtx"
    raw = bytearray(evtx_bytes(EVENTS))
    raw[4096 + 512 :] = b"\xff" * (len(raw) - 4096 - 512)  # the records overwritten
    path.write_bytes(bytes(raw))
    with pytest.raises(UsageError, match=r"broken\.evtx: not a readable \.evtx file \("):
        parse_file(path)


def test_without_the_evtx_package_one_line_says_what_to_install(
    evtx_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The package is installed here; a None in sys.modules makes its import fail as it
    would where it is not (the one stand-in in this file)."""
    monkeypatch.setitem(sys.modules, "evtx", None)
    with pytest.raises(UsageError) as caught:
        parse_file(evtx_file)
    assert "reading .evtx files needs the evtx package" in str(caught.value)
    assert 'pip install "remediate[evtx]"' in str(caught.value.hint)


@pytest.mark.e2e
def test_diagnose_an_evtx_file_with_the_installed_command(evtx_file: Path) -> None:
    assert EXE.exists(), f"the remediate executable is not installed at {EXE}"
    done = subprocess.run(
        [str(EXE), "diagnose", str(evtx_file), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    by_event = {e["event_id"]: e for e in json.loads(done.stdout)["events"]}
    assert by_event[2016]["inputs"]["connector"] == NAME
    assert by_event[2016]["inputs"]["smart_hosts"] == ["relay.contoso.lab"]
    assert by_event[2002]["inputs"]["failed_host"] == "192.0.2.25"


@pytest.mark.e2e
def test_fix_reads_its_event_from_an_evtx_file(evtx_file: Path, tmp_path: Path) -> None:
    """fix --event-file FILE.evtx: the wizard opens on the event read from the file (the
    answers stop it before any connection; the lab run of fix is the XML path's test)."""
    answers = tmp_path / "answers.yaml"
    answers.write_text("action: cancel\n")
    done = subprocess.run(
        [str(EXE), "fix", "--event-file", str(evtx_file), "--answers", str(answers)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert f"Event 2016 for Send connector '{NAME}'." in done.stdout, done.stderr
    assert "no answer for 'connection'" in done.stderr
    assert done.returncode == 2
