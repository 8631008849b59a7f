"""Issue 13, hostile files through the installed command (no endpoint needed): event files
that took quadratic time or were mis-decoded, terminal control codes in what is printed,
YAML alias bombs and duplicate keys, bulk files in UTF-16 and Windows-1252, the same
endpoint named two ways. Speed is measured by benchmarks/events.py, never here."""

from __future__ import annotations

import json
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from remediate.bulk.spec import SpecError, load
from remediate.core.files import decode_text
from remediate.diagnose.events import MAX_INPUT_BYTES, parse_file
from remediate.remote.connections import Connection, ProfileStore
from remediate.ui.commands.fix import event_text

pytestmark = pytest.mark.e2e

EXE = Path(sys.executable).parent / "remediate"
MESSAGE_2016 = (
    "An authentication credential initialization error Unsupported occurred with Send "
    "connector {name}. The authentication mechanism used was Login. The name of the server "
    "that we were trying to authenticate to was SMTPSVC/relay.contoso.lab. This server was "
    "using the name EX01$."
)
BAD = "Relay\x1b]0;pwned\x07\x1b[2J\x00\u202e"  # OSC title, BEL, clear screen, NUL, RLO


def remediate(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    assert EXE.exists(), f"the remediate executable is not installed at {EXE}"
    return subprocess.run(
        [str(EXE), *args], input=stdin, capture_output=True, text=True, timeout=120,
        check=False, env=env,
    )  # fmt: skip


def controls(text: str) -> list[str]:
    return [ch for ch in text if ch != "\n" and not ch.isprintable()]


# --- 1. event parsing: linear scans, a DTD refused, a bound --------------------------------


def test_hostile_event_files_are_read_to_the_same_records(tmp_path: Path) -> None:
    """The inputs that took 82 s and 53 s (quadratic scans) now parse; their records are
    what the message grammar says (none in the first, none complete in the second)."""
    xml = tmp_path / "events.xml"
    xml.write_text("<Event> " * 40_000, encoding="utf-8")
    done = remediate("diagnose", str(xml))
    assert done.returncode == 2 and "no <Event> elements" in done.stderr  # none is closed
    prefixes = tmp_path / "prefixes.txt"
    prefix = "An authentication credential initialization error x occurred with Send connector y. "
    prefixes.write_text(prefix * 5_000 + MESSAGE_2016.format(name="Outbound to Relay"))
    done = remediate("diagnose", "--json", str(prefixes))
    assert done.returncode == 0, done.stderr
    [event] = json.loads(done.stdout)["events"]
    assert event["connector"] == "Outbound to Relay" and event["user"] == "EX01$"


def test_a_dtd_is_refused_with_its_line(tmp_path: Path) -> None:
    bomb = tmp_path / "lol.xml"
    bomb.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">]>\n'
        "<Event><System><EventID>2016</EventID></System><Data>&lol;</Data></Event>\n"
    )
    done = remediate("diagnose", str(bomb))
    assert done.returncode == 2
    assert f"{bomb}:2: a DTD or entity definition" in done.stderr


def test_an_events_file_past_the_bound_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    with big.open("wb") as handle:
        handle.truncate(MAX_INPUT_BYTES + 1)
    answers = tmp_path / "answers.yaml"
    answers.write_text("event: '2016'\naction: cancel\n")
    for args in (
        ("diagnose", str(big)),
        ("fix", "--event-file", str(big), "--answers", str(answers)),
    ):
        done = remediate(*args)
        assert done.returncode == 2, done.stderr
        assert "larger than 32 MiB; not read" in done.stderr


# --- 11. one decoder --------------------------------------------------------------------------


@pytest.mark.parametrize("extra", ["", " "], ids=["odd", "even"])
def test_cp1252_text_is_read_whatever_its_length(tmp_path: Path, extra: str) -> None:
    """Before, an even-length cp1252 file "decoded" as UTF-16 into nonsense."""
    text = MESSAGE_2016.format(name="Envoi vers Relais Société") + extra
    path = tmp_path / "event.txt"
    path.write_bytes(text.encode("cp1252"))
    [record] = parse_file(path)
    assert record.ok and record.connector == "Envoi vers Relais Société"
    assert event_text(Namespace(event_file=path)) == text  # fix --event-file reads the same


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-16", "utf-8-sig"])
def test_utf16_without_a_bom_is_found_by_its_nuls(tmp_path: Path, encoding: str) -> None:
    text = MESSAGE_2016.format(name="Outbound to Relay")
    path = tmp_path / "event.txt"
    path.write_bytes(text.encode(encoding))
    assert decode_text(path.read_bytes()) == text
    assert event_text(Namespace(event_file=path)) == text
    [record] = parse_file(path)
    assert record.connector == "Outbound to Relay"


# --- 5. terminal control codes ---------------------------------------------------------------


def test_control_codes_from_an_event_file_never_reach_the_terminal(tmp_path: Path) -> None:
    path = tmp_path / "event.txt"
    path.write_text(MESSAGE_2016.format(name=BAD), encoding="utf-8")
    done = remediate("diagnose", str(path))
    assert done.returncode == 0, done.stderr
    assert controls(done.stdout + done.stderr) == []
    nexts = [line for line in done.stdout.splitlines() if line.strip().startswith("next:")]
    assert nexts and all(controls(line) == [] for line in nexts)
    # the suggested command still names the connector exactly (bash's $'...' quoting)
    assert "--connector $'Relay\\x1b]0;pwned\\x07\\x1b[2J\\x00\\u202e'" in nexts[0]
    done = remediate("diagnose", "--json", str(path))
    [event] = json.loads(done.stdout)["events"]
    assert all(controls(command) == [] for command in event["commands"])
    assert event["connector"] == BAD  # the data itself is kept, escaped by JSON


def test_the_suggested_command_runs_back_to_the_same_name(tmp_path: Path) -> None:
    path = tmp_path / "event.txt"
    path.write_text(MESSAGE_2016.format(name=BAD.replace("\x00", "")), encoding="utf-8")
    done = remediate("diagnose", "--json", str(path))
    command = json.loads(done.stdout)["events"][0]["commands"][0]
    word = command.split("--connector ", 1)[1]
    echoed = subprocess.run(
        ["bash", "-c", f"printf '%s' {word}"], capture_output=True, text=True, check=True
    )
    assert echoed.stdout == BAD.replace("\x00", "")


def test_an_error_naming_a_file_with_control_codes_is_printable(tmp_path: Path) -> None:
    done = remediate("diagnose", str(tmp_path / "missing\x1b[31m.xml"))
    assert done.returncode == 2 and controls(done.stderr) == []
    assert "missing?[31m.xml: cannot be read" in done.stderr


# --- 6/7. YAML: alias bombs, duplicate keys; bulk files in other encodings -------------------


def _bomb(levels: int) -> str:
    lines = ['a0: &a0 ["relay.contoso.lab"]']
    for n in range(1, levels):
        refs = ", ".join([f"*a{n - 1}"] * 10)
        lines.append(f"a{n}: &a{n} [{refs}]")
    return "\n".join(lines)


def test_a_yaml_alias_bomb_in_a_bulk_file_is_refused_with_its_line(tmp_path: Path) -> None:
    spec = tmp_path / "bomb.yaml"
    spec.write_text(
        "defaults:\n  endpoint: http://127.0.0.1:5985/PowerShell\n"
        + "\n".join("  " + line for line in _bomb(6).splitlines())
        + "\nconnectors:\n  - connector: Outbound to Relay\n    smart_hosts: *a5\n"
    )
    done = remediate("bulk", "plan", str(spec))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{spec}:4: the alias *a0 is not accepted" in done.stderr
    assert "MemoryError" not in done.stderr and "Traceback" not in done.stderr


def test_a_yaml_alias_in_an_answers_file_is_refused_with_its_line(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text("event: &e '2016'\nconnector: *e\n")
    done = remediate("fix", "--answers", str(answers))
    assert done.returncode == 2
    assert f"{answers}:2: the alias *e is not accepted" in done.stderr


def test_deep_yaml_nesting_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "deep.yaml"
    spec.write_text("connectors: " + "[" * 200 + "]" * 200 + "\n")
    done = remediate("bulk", "plan", str(spec))
    assert done.returncode == 2 and f"{spec}:1: nested more than 32 levels deep" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("key", ["connectors", "defaults"])
def test_duplicate_top_level_keys_are_refused_with_their_line(tmp_path: Path, key: str) -> None:
    spec = tmp_path / "twice.yaml"
    spec.write_text(
        "defaults:\n  port: 587\n"
        "connectors:\n  - endpoint: http://127.0.0.1:5985/PowerShell\n"
        "    connector: Outbound to Relay\n"
        f"{key}:\n  - x\n"
    )
    done = remediate("bulk", "plan", str(spec))
    assert done.returncode == 2
    first = 1 if key == "defaults" else 3
    assert f"{spec}:6: {key}: given twice (first on line {first})" in done.stderr


def test_duplicate_answers_are_refused(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text("event: '2016'\naction: cancel\naction: apply\n")
    done = remediate("fix", "--answers", str(answers))
    assert done.returncode == 2
    assert f"{answers}:3: action: given twice (first on line 2)" in done.stderr


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "cp1252"])
def test_bulk_files_in_other_encodings_get_line_numbers(tmp_path: Path, encoding: str) -> None:
    spec = tmp_path / "rows.csv"
    text = (
        "endpoint,connector,port\n"
        "http://127.0.0.1:5985/PowerShell,Envoi Société,587\n"
        "http://127.0.0.1:5985/PowerShell,Other,99999\n"
    )
    spec.write_bytes(text.encode(encoding))
    done = remediate("bulk", "plan", str(spec))
    assert done.returncode == 2
    assert f"{spec}:3: port: '99999' is not a port number" in done.stderr


# --- 8. one endpoint named two ways -----------------------------------------------------------


@pytest.fixture
def profiles(tmp_path: Path) -> ProfileStore:
    store = ProfileStore(tmp_path / "profiles.json")
    store.save(Connection(server="ex01.contoso.com", port=80, profile="ex01"))
    return store


@pytest.mark.parametrize(
    "url",
    [
        "http://ex01.contoso.com/PowerShell",
        "http://EX01.Contoso.COM:80/powershell/",
        "http://ex01.contoso.com.:80/PowerShell",
    ],
)
def test_a_connector_selected_through_a_profile_and_its_url_is_refused(
    tmp_path: Path, profiles: ProfileStore, url: str
) -> None:
    spec = tmp_path / "two.yaml"
    spec.write_text(
        "connectors:\n"
        "  - endpoint: ex01\n    connector: Outbound to Relay\n    port: 587\n"
        f"  - endpoint: {url}\n    connector: outbound to relay\n    port: 2525\n"
    )
    with pytest.raises(SpecError) as caught:
        load(spec, profiles)
    assert [(p.line, p.message) for p in caught.value.problems] == [
        (5, "connector 'outbound to relay' is already on line 2")
    ]


def test_rows_naming_one_endpoint_two_ways_share_it(tmp_path: Path, profiles: ProfileStore) -> None:
    spec = tmp_path / "two.yaml"
    spec.write_text(
        "connectors:\n"
        "  - endpoint: ex01\n    connector: A\n    port: 587\n"
        "  - endpoint: http://EX01.contoso.com/PowerShell\n    smart_host_match: '*'\n"
        "    port: 2525\n"
    )
    loaded = load(spec, profiles)
    assert len(loaded.endpoints()) == 1  # one session, so a connector both select is caught
    assert loaded.endpoints()[0].profile == "ex01"


def test_one_endpoint_with_two_users_is_refused(tmp_path: Path, profiles: ProfileStore) -> None:
    spec = tmp_path / "two.yaml"
    spec.write_text(
        "connectors:\n"
        "  - endpoint: ex01\n    connector: A\n    port: 587\n"
        "  - endpoint: http://ex01.contoso.com/PowerShell\n    auth: basic\n    user: admin\n"
        "    connector: B\n    port: 2525\n"
    )
    with pytest.raises(SpecError) as caught:
        load(spec, profiles)
    [(line, message)] = [(p.line, p.message) for p in caught.value.problems]
    assert line == 5 and "is the endpoint of line 2 (ex01) with other auth" in message
