"""Issue 16 in a real terminal: the INSTALLED `remediate` in a pseudo-terminal (pexpect), or in
tmux for a paste without bracketed paste. Every mistake a newcomer makes is asked again, and
every run ends with one verdict line whose exit status matches it."""

from __future__ import annotations

import copy
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

from remediate.core.exchange import AuthMechanism, CredentialState
from remediate.lab.api import LabCredential
from remediate.lab.seed import PARTNER, RELAY
from remediate.lab.server import Lab
from tests.wizard.helpers import relay_connector

pytestmark = pytest.mark.e2e  # the installed command in a real terminal

ENTER = "\r"
DOWN = "\x1b[B"
CTRL_C = "\x03"
CTRL_U = "\x15"
REMEDIATE = Path(sys.executable).with_name("remediate")
ROOT = Path(__file__).resolve().parents[2]
EVENT_VIEWER = (ROOT / "tests/fixtures/events/pasted-en.txt").read_text().split("\n\n")[0]
WIDTH = 100
RED_FAIL = "\x1b[31m[FAIL]\x1b[0m"
GREEN_OK = "\x1b[32m[ok]\x1b[0m"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBUS_", "XDG_", "NO_COLOR"))}
    env.update(
        PROMPT_TOOLKIT_NO_CPR="1",
        HOME=str(tmp_path),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        TERM="xterm",
        COLUMNS=str(WIDTH),
        LINES="50",
        **extra,
    )
    return env


def _spawn(tmp_path: Path, args: list[str], **extra: str) -> pexpect.spawn:
    assert REMEDIATE.exists(), f"remediate is not installed next to {sys.executable}"
    child = pexpect.spawn(
        str(REMEDIATE),
        args,
        env=_env(tmp_path, **extra),
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=60,
        dimensions=(50, WIDTH),
    )
    child.logfile_read = io.StringIO()
    return child


def _finish(child: pexpect.spawn) -> str:
    """Everything the terminal showed, once the command has ended."""
    child.expect(pexpect.EOF)
    child.close()
    return str(child.logfile_read.getvalue())


def _fix(lab: Lab, *more: str) -> list[str]:
    return ["fix", *more, "--server", lab.endpoint_url, "--auth", "basic", "--user", lab.admin_user]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with Lab(
        state_file=tmp_path / "lab-state.json", workdir=tmp_path / "lab", auth="basic"
    ) as started:
        yield started


def _answer(child: pexpect.spawn, prompt: str, keys: str = ENTER) -> None:
    child.expect_exact(prompt)
    child.send(keys)


def _type_twice(child: pexpect.spawn, secret: str) -> None:
    _answer(child, "Password for relay@contoso.lab:", secret + ENTER)
    _answer(child, "The same password again:", secret + ENTER)


# --- 1. every question re-asks -------------------------------------------------------------


def test_a_plain_multi_line_paste_without_bracketed_paste_is_read_to_the_empty_line(
    lab: Lab, tmp_path: Path
) -> None:
    """tmux paste-buffer without -p sends the lines as typed keys, each with its Enter."""
    assert shutil.which("tmux"), "tmux is needed for the paste test"
    sock = str(tmp_path / "tmux.sock")
    out = tmp_path / "screen.txt"
    env = _env(tmp_path)
    command = " ".join(
        [
            "env",
            *(f"{k}={_quote(v)}" for k, v in env.items() if k in _PASSED),
            str(REMEDIATE),
            *(_quote(a) for a in _fix(lab)),
            "; echo EXIT=$?; sleep 30",
        ]
    )
    tmux = ["tmux", "-S", sock]
    start = f"sleep 1; {command}"  # time for pipe-pane to be set before the first prompt
    subprocess.run([*tmux, "new-session", "-d", "-x", str(WIDTH), "-y", "50", start], check=True)
    subprocess.run([*tmux, "pipe-pane", "-o", f"cat >> {out}"], check=True)
    try:
        _wait_for(out, "Paste the event message")
        subprocess.run([*tmux, "set-buffer", EVENT_VIEWER + "\n\n"], check=True)
        subprocess.run([*tmux, "paste-buffer"], check=True)  # no -p: no bracketed paste
        _wait_for(out, "Password for")
        subprocess.run([*tmux, "send-keys", lab.admin_password, "Enter"], check=True)
        _wait_for(out, "Which Send connector")
        subprocess.run([*tmux, "send-keys", "C-c"], check=True)
        _wait_for(out, "EXIT=")
    finally:
        subprocess.run([*tmux, "kill-server"], check=False)
    text = out.read_text()
    assert f"Event 2016 for Send connector '{RELAY}'." in text
    assert "mechanism Login means BasicAuth or BasicAuthRequireTLS" in text
    assert "Interrupted: nothing was changed on Exchange." in text and "EXIT=130" in text


_PASSED = ("PROMPT_TOOLKIT_NO_CPR", "HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "PATH", "TERM")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _wait_for(path: Path, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} did not appear; screen so far:\n{path.read_text()}")


def test_the_event_number_at_the_text_prompt_then_a_wrong_admin_password_then_the_right(
    lab: Lab, tmp_path: Path
) -> None:
    child = _spawn(tmp_path, _fix(lab))
    _answer(child, "Paste the event message", "2016" + ENTER)
    _answer(child, f"Password for {lab.admin_user}:", "not-the-password" + ENTER)
    child.expect_exact(f"refused the user name or password for {lab.admin_user}")
    _answer(child, "(try 2 of 3)", "")
    _answer(child, f"Password for {lab.admin_user}:", lab.admin_password + ENTER)
    _answer(child, "Which Send connector", CTRL_C)
    text = _finish(child)
    assert child.exitstatus == 130
    assert "check the password stored" not in text
    assert "Interrupted: nothing was changed on Exchange." in text


def test_three_wrong_admin_passwords_are_one_clear_stop(lab: Lab, tmp_path: Path) -> None:
    child = _spawn(tmp_path, _fix(lab, "2016"))
    _answer(child, f"Password for {lab.admin_user}:", "wrong" + ENTER)
    for attempt in (2, 3):
        child.expect_exact(f"(try {attempt} of 3)")  # prompt_toolkit redraws each prompt
        _answer(child, f"Password for {lab.admin_user}:", "wrong" + ENTER)
    text = _finish(child)
    assert child.exitstatus == 5
    assert f"refused the password for {lab.admin_user} 3 times; stopped here" in text
    assert "nothing was changed" in text and "Traceback" not in text


# --- 2. retype and re-apply ----------------------------------------------------------------


def test_a_wrong_relay_password_then_the_retyped_right_one_drains_the_queues(
    tmp_path: Path,
) -> None:
    child = _spawn(tmp_path, ["demo"])
    _answer(child, "Which Send connector")
    _answer(child, "Authentication mechanism")
    _answer(child, "Relay account user name")
    _answer(child, "Password for relay@contoso.lab:", DOWN + ENTER)  # type it
    _type_twice(child, "not-the-password")
    _answer(child, "What now")  # apply
    child.expect_exact("Mail still fails: ")
    child.expect_exact("535")
    child.expect_exact("Retype the relay password and apply only the credential again")
    child.expect_exact("Choose another mechanism")
    child.expect_exact("Undo: put the connector back")
    _answer(child, "Keep the connector as it is now")  # the first, retype, is preselected
    _answer(child, "Password for relay@contoso.lab:")  # the lab's: the demo cannot know it
    child.expect_exact("Set-SendConnector: ok")
    child.expect(r"Removed the demo's backup and audit log \((\S+)\)")
    records = Path(child.match.group(1))
    text = _finish(child)
    assert child.exitstatus == 0, text
    assert "The lab's smart host has received 5 message(s)." in text
    last = [line for line in text.splitlines() if line.startswith(("Mail ", "Whether mail"))]
    assert last[-1] == "Mail flows: EX01\\4, EX02\\12 drained."
    assert "remediate undo" not in text
    assert not records.exists()
    lines = [line.rstrip("\r") for line in text.splitlines()]
    first = next(i for i, line in enumerate(lines) if "EX01\\4 LastError: " in line)
    block = lines[first : next(i for i in range(first, len(lines)) if "Meaning:" in lines[i])]
    assert len(block) > 1 and all(len(line) <= WIDTH for line in block), block  # wrapped
    assert all(line.startswith("    ") for line in block[1:])


# --- 3. guard rails ------------------------------------------------------------------------


def test_a_mechanism_that_will_not_work_is_refused_at_the_confirmation(tmp_path: Path) -> None:
    child = _spawn(tmp_path, ["demo", "--keep"])
    _answer(child, "Which Send connector")
    _answer(child, "Authentication mechanism", DOWN * 3 + ENTER)  # None (will not work)
    child.expect_exact("None will not work with this smart host: the smart host offers AUTH")
    _answer(child, "Use it anyway?", ENTER)  # default: No
    child.expect_exact("Not None: choose again.")
    _answer(child, "Authentication mechanism")  # the recommended one
    _answer(child, "Relay account user name")
    _answer(child, "Password for relay@contoso.lab:")  # the lab's
    _answer(child, "What now")
    child.expect(r"Kept the demo's backup and audit log in (\S+) \(--keep\)")
    records = Path(child.match.group(1))
    text = _finish(child)
    assert child.exitstatus == 0, text
    assert RED_FAIL + " mechanism: ExchangeServer" in text  # colour on a terminal
    assert GREEN_OK in text
    assert text.rstrip().splitlines()[-4] == "Mail flows: EX01\\4, EX02\\12 drained."
    assert (records / "remediate" / "audit.log").is_file()
    shutil.rmtree(records)


def test_undo_in_the_wizard_asks_for_the_credential_the_old_values_need(
    lab: Lab, tmp_path: Path
) -> None:
    """A BasicAuth connector whose credential is gone (the 2016 case where it was wiped);
    None is chosen anyway, the smart host answers 530, and undo needs the credential back."""
    wiped = copy.deepcopy(lab.organization.connector(RELAY))
    wiped.smart_host_auth_mechanism, wiped.credential = "BasicAuth", None
    lab.organization.replace_connector(wiped)
    child = _spawn(tmp_path, [*_fix(lab, "2016"), "--connector", RELAY], NO_COLOR="1")
    _answer(child, f"Password for {lab.admin_user}:", lab.admin_password + ENTER)
    _answer(child, "Which Send connector")
    _answer(child, "Authentication mechanism", DOWN * 3 + ENTER)  # None
    _answer(child, "Use it anyway?", "y")
    _answer(child, "What now")
    child.expect_exact("530 5.7.0 Authentication required")
    _answer(child, "Keep the connector as it is now", DOWN + ENTER)  # another mechanism, undo
    child.expect_exact("The old settings use BasicAuth, which Exchange accepts only with")
    _answer(child, "Relay account user name", CTRL_U + lab.relay_user + ENTER)
    _answer(child, "Password for relay@contoso.lab:")  # type (no keyring here)
    _type_twice(child, lab.relay_password)
    text = _finish(child)
    assert child.exitstatus == 6, text
    assert "--username" not in text and "--reenter" not in text
    assert "The change was undone from the backup." in text
    assert "[FAIL]" in text and RED_FAIL not in text  # NO_COLOR
    assert text.rstrip().splitlines()[-1].startswith("Mail still fails: ")
    after = relay_connector(lab)
    assert after.smart_host_auth_mechanism is AuthMechanism.BASIC_AUTH
    assert after.credential is CredentialState.SET
    # the wizard's undo went through the apply pipeline: backed up first, then audited
    audit = tmp_path / "state" / "remediate" / "audit.log"
    runs: dict[str, list[dict[str, Any]]] = {}
    for line in audit.read_text().splitlines():
        entry = json.loads(line)
        runs.setdefault(entry["backup"], []).append(entry)
    backups = list(runs)
    assert len(backups) >= 2 and all(Path(b).is_file() for b in backups), runs
    undo_sets = [e for e in runs[backups[-1]] if e["cmdlet"] == "Set-SendConnector"]
    assert undo_sets and all(e["result"] == "changed" for e in undo_sets)
    changes = [e["changes"] for e in undo_sets]
    assert {"old": "None", "new": "BasicAuth"} in [c.get("SmartHostAuthMechanism") for c in changes]
    credential = "AuthenticationCredential"
    sent = [c[credential]["new"] for c in changes if credential in c]
    assert sent == [{"credential_user": lab.relay_user}]


# --- 4. undo that is honest ----------------------------------------------------------------


def test_the_2002_undo_has_no_duplicate_or_no_op_steps(lab: Lab, tmp_path: Path) -> None:
    """Another closed port is typed: the retry still fails; verbose logging is turned back
    off; undo then restores only the port (logging is already as it was)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        wrong = int(sock.getsockname()[1])
    before = lab.organization.connector(PARTNER).port
    child = _spawn(tmp_path, [*_fix(lab, "2002"), "--connector", PARTNER, "--queue-wait", "4"])
    _answer(child, f"Password for {lab.admin_user}:", lab.admin_password + ENTER)
    _answer(child, "Which Send connector")
    _answer(child, "Smart host port:", CTRL_U + f"{wrong}" + ENTER)
    _answer(child, "Smart hosts (comma separated):")
    _answer(child, "Turn on verbose protocol logging")
    _answer(child, "What now")
    child.expect_exact("Mail still fails: ")
    _answer(child, "Turn verbose protocol logging back to None now?")
    _answer(child, "Undo the change from the backup?", "y")
    child.expect_exact("Undo:")
    child.expect_exact("Summary:")
    undo_part = str(child.before)
    text = _finish(child)
    assert child.exitstatus == 6, text
    recap = [line.strip() for line in undo_part.splitlines() if line.strip()[:2] in ("1.", "2.")]
    assert recap == ["1. Set-SendConnector -Port: ran, changed", "2. Get-SendConnector: ran (read)"]
    assert "ProtocolLoggingLevel" not in undo_part
    assert lab.organization.connector(PARTNER).port == before
    audit = tmp_path / "state" / "remediate" / "audit.log"
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    undo_entry = entries[-1]
    assert undo_entry["changes"] == {"Port": {"old": wrong, "new": before}}
    assert undo_entry["result"] == "changed"


# --- 7. one vocabulary ---------------------------------------------------------------------


def test_show_and_the_wizard_print_the_same_table_in_terminal_cells(
    lab: Lab, tmp_path: Path
) -> None:
    wide = copy.deepcopy(lab.organization.connector(PARTNER))
    wide.name, wide.guid = "到合作伙伴的出站", "0f7e1c5a-3a4b-4c2d-9e8f-1a2b3c4d5e6f"
    wide.credential = LabCredential(lab.relay_user, lab.relay_password)
    lab.organization.add_connectors([wide])
    shown = subprocess.run(
        [str(REMEDIATE), "show", "--server", lab.endpoint_url, "--auth", "basic", "--user",
         lab.admin_user, "--password-stdin"],
        input=lab.admin_password + "\n", capture_output=True, text=True, timeout=60,
        env=_env(tmp_path),
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    table = [line for line in shown.stdout.splitlines() if line.strip()]
    child = _spawn(tmp_path, _fix(lab, "2016"))
    _answer(child, f"Password for {lab.admin_user}:", lab.admin_password + ENTER)
    _answer(child, "Which Send connector", CTRL_C)
    text = _finish(child)
    wizard = [line[2:].rstrip("\r") for line in text.splitlines() if line.startswith("  ")]
    for line in table:
        assert line in wizard
    header = table[0]
    assert header.split()[:4] == ["NAME", "SMART", "HOSTS", "PORT"]
    from wcwidth import wcswidth

    column = header.index("SMART HOSTS")
    (row,) = [line for line in table if line.startswith("到合作伙伴的出站")]
    cut = next(i for i in range(len(row)) if wcswidth(row[:i]) == column)
    assert row[cut:].startswith("localhost")  # lined up in terminal cells


# --- 6. the demo ---------------------------------------------------------------------------


def test_demo_sh_skips_pip_when_the_installed_version_is_current(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text("password_source: lab\naction: cancel\n")
    started = time.monotonic()
    done = subprocess.run(
        ["bash", str(ROOT / "scripts/demo.sh"), "--answers", str(answers)],
        capture_output=True, text=True, timeout=180, env=_env(tmp_path),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # cancelled
    assert "is installed and current: pip is skipped" in done.stdout
    assert "Cancelled: nothing was changed." in done.stdout
    print(f"demo.sh with a current install: {time.monotonic() - started:.1f} s")


# --- 8. the answers file -------------------------------------------------------------------


def test_the_answers_file_reports_every_problem_at_once(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text("action: now\ncolour: blue\nundo: maybe\nmechanism: Kerberos\n")
    done = subprocess.run(
        [str(REMEDIATE), "demo", "--answers", str(answers)],
        capture_output=True, text=True, timeout=60, env=_env(tmp_path),
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert [re.sub(r":.*", "", line.removeprefix(f"{answers}:")) for line in lines[:4]] == [
        "1", "2", "3", "4"
    ]  # fmt: skip
    assert f"remediate: error: {answers}: 4 problems; nothing was run" in done.stderr
    assert "Starting the lab" not in done.stdout
