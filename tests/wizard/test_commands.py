"""`remediate fix` / `remediate demo` as installed executables without a terminal, and the
answers file's validation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from remediate.core.answers import load
from remediate.core.errors import UsageError

REMEDIATE = Path(sys.executable).with_name("remediate")


def _run(args: list[str], tmp_path: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBUS_", "XDG_"))}
    env.update(HOME=str(tmp_path), XDG_STATE_HOME=str(tmp_path / "state"))
    return subprocess.run(
        [str(REMEDIATE), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )


@pytest.mark.e2e
@pytest.mark.parametrize("command", [["fix"], ["fix", "2016"]])
def test_without_a_terminal_refuses_at_once_with_status_2(
    command: list[str], tmp_path: Path
) -> None:
    done = _run(command, tmp_path)
    assert done.returncode == 2
    assert "remediate fix is interactive and there is no terminal to ask on" in done.stderr
    assert "remediate plan" in done.stderr and "--answers FILE" in done.stderr


@pytest.mark.e2e
def test_demo_without_a_terminal_names_the_demo(tmp_path: Path) -> None:
    done = _run(["demo"], tmp_path)
    assert done.returncode == 2
    assert "remediate demo is interactive and there is no terminal to ask on" in done.stderr
    assert "'remediate demo --answers FILE'" in done.stderr
    assert "fix" not in done.stderr
    assert "Starting the lab" not in done.stdout


@pytest.mark.e2e
def test_demo_with_answers_needs_no_terminal(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text("username: relay@contoso.lab\npassword_source: lab\naction: apply\n")
    done = _run(["demo", "--answers", str(answers)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Mail flows: " in done.stdout
    assert "The lab's smart host has received 5 message(s)." in done.stdout


@pytest.mark.e2e
def test_demo_with_answers_typed_password_from_stdin_and_save_script(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    script = tmp_path / "fix.ps1"
    answers.write_text(
        f"password_source: type\naction: save\nscript_path: {script}\nusername: relay@contoso.lab\n"
    )
    done = _run(["demo", "--answers", str(answers)], tmp_path, stdin="Secret-1\nSecret-1\n")
    assert done.returncode == 0, done.stderr
    assert script.is_file() and "Set-SendConnector" in script.read_text()
    assert "Secret-1" not in done.stdout + done.stderr + script.read_text()
    assert "The lab's smart host has received 0 message(s)." in done.stdout


@pytest.mark.e2e
def test_answers_without_a_needed_answer_fail_naming_the_key(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text("action: apply\n")
    done = _run(["fix", "2016", "--answers", str(answers)], tmp_path)
    assert done.returncode == 2
    assert "no answer for 'connection'" in done.stderr


@pytest.mark.e2e
def test_answers_typed_password_missing_on_stdin_is_one_clear_error(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text("password_source: type\naction: apply\n")
    done = _run(["demo", "--answers", str(answers)], tmp_path)
    assert done.returncode == 2
    assert "no password on stdin" in done.stderr
    assert "The lab's smart host has received" not in done.stdout  # stopped, lab shut down


def _answers(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "a.yaml"
    path.write_text(text)
    return path


def test_answers_file_is_validated_with_line_and_key(tmp_path: Path) -> None:
    good = load(_answers(tmp_path, "mechanism: basicauth\nundo: false\nport: 587\n"))
    assert good == {"mechanism": "BasicAuth", "undo": False, "port": "587"}
    cases = {
        "action: apply\ncolour: blue\n": "a.yaml:2: unknown key 'colour'",
        "relay_password: x\n": "a.yaml:1: 'relay_password': passwords never go in",
        "action: now\n": "a.yaml:1: 'action': 'now' is not one of apply",
        "undo: maybe\n": "a.yaml:1: 'undo' must be true or false",
        "mechanism: Kerberos\n": "a.yaml:1: 'mechanism':",
        "connector: [a, b]\n": "a.yaml:1: 'connector' must be a single value",
        "- apply\n": "a.yaml:1: the answers must be 'key: value' lines",
        "action: [\n": "not valid YAML",
    }
    for text, expected in cases.items():
        with pytest.raises(UsageError) as caught:
            load(_answers(tmp_path, text))
        assert expected in str(caught.value), text
    with pytest.raises(UsageError) as caught:
        load(_answers(tmp_path, "admin_password: Sup3rSecret\n"))
    assert "Sup3rSecret" not in str(caught.value) + str(caught.value.hint)
