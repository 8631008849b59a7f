"""`remediate plan` and `remediate playbooks`, run as the real installed executable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.pwsh_oracle import CRED_LINE, check_line

pytestmark = pytest.mark.e2e

EXE = Path(sys.executable).parent / "remediate"
GOLDEN = Path(__file__).parent.parent / "golden"
NEWCOMER = [
    "plan",
    "2016",
    "--connector",
    "Outbound to Relay",
    "--mechanism",
    "BasicAuthRequireTLS",
    "--username",
    "relay@contoso.com",
    "--smart-host",
    "smtp.relay.example",
    "--port",
    "587",
]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert EXE.exists(), f"the remediate executable is not installed at {EXE}"
    return subprocess.run(
        [str(EXE), *args], capture_output=True, text=True, cwd=cwd, timeout=60, check=False
    )


def without_time(script: str) -> list[str]:
    return [line for line in script.splitlines() if not line.startswith("# Generated: ")]


def test_newcomer_gets_the_golden_script() -> None:
    result = run(*NEWCOMER)
    assert (result.returncode, result.stderr) == (0, "")
    # stdout stays LF without a BOM; the golden file holds the bytes a script file gets
    golden = (GOLDEN / "2016-newcomer.ps1").read_text(encoding="utf-8-sig")
    assert without_time(result.stdout) == without_time(golden)
    for line in result.stdout.splitlines():
        if line.startswith("$cred"):
            assert CRED_LINE.fullmatch(line)
        elif line and not line.startswith("#"):
            check_line(line)


def test_playbook_by_name_and_what_if() -> None:
    args = [a if a != "2016" else "smarthost-auth-credential" for a in NEWCOMER]
    result = run(*args, "--what-if")
    assert result.returncode == 0, result.stderr
    changes = [
        line
        for line in result.stdout.splitlines()
        if line.startswith(("Set-SendConnector", "Retry-Queue"))
    ]
    assert len(changes) == 3 and all(line.endswith("-Confirm:$false -WhatIf") for line in changes)


def test_output_file(tmp_path: Path) -> None:
    target = tmp_path / "fix.ps1"
    result = run(
        "plan",
        "2002",
        "--connector",
        "Outbound to Partner",
        "--smart-host",
        "mx.partner.example",
        "--port",
        "25",
        "--enable",
        "--output",
        str(target),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert f"wrote {target}" in result.stderr
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\n" not in raw.replace(b"\r\n", b"")
    text = raw.decode("utf-8-sig")
    assert (
        "Set-SendConnector -Identity 'Outbound to Partner' -Enabled $true -Confirm:$false" in text
    )
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "--port: 70000 is not a port number"),
        (["--port", "x"], "--port: 'x' is not a port number"),
        (["--smart-host", "bad host"], "--smart-host: 'bad host' is not a host name"),
        (["--mechanism", "Kerberos"], "--mechanism: 'Kerberos' is not one of"),
        (["--enable"], "--enable: not an option of playbook 2016"),
        (
            ["--require-tls", "--no-require-tls", "--tls-auth-level", "EncryptionOnly"],
            "TlsAuthLevel: TlsAuthLevel needs RequireTLS",
        ),
        (["--username", "u" * 257], "--username: 257 characters"),
    ],
)
def test_refused_input(tmp_path: Path, args: list[str], message: str) -> None:
    target = tmp_path / "fix.ps1"
    result = run("plan", "2016", "--connector", "Outbound to Relay", *args, "--output", str(target))
    assert result.returncode == 2
    assert result.stdout == ""
    first = result.stderr.splitlines()[0]
    assert first.startswith("remediate: error: ") and message in first, result.stderr
    assert len(result.stderr.splitlines()) <= 2
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_control_character_in_connector_name_is_refused() -> None:
    result = run("plan", "2016", "--connector", "Relay\nRemove-SendConnector", "--port", "25")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(
        "remediate: error: --connector: contains the control character U+000A"
    )


def test_unknown_playbook() -> None:
    result = run("plan", "2003", "--connector", "X", "--port", "25")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "remediate: error: no playbook named '2003'; known playbooks: 2002 "
        "(send-connection-error), 2016 (smarthost-auth-credential)",
        "hint: run 'remediate playbooks' to list them",
    ]


def test_output_into_missing_directory(tmp_path: Path) -> None:
    result = run(*NEWCOMER, "--output", str(tmp_path / "nope" / "fix.ps1"))
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_playbooks_list() -> None:
    result = run("playbooks")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["EVENT", "PLAYBOOK", "PURPOSE"]
    assert lines[1].split()[:2] == ["2002", "send-connection-error"]
    assert lines[2].split()[:2] == ["2016", "smarthost-auth-credential"]


def test_help_and_version() -> None:
    help_text = run("plan", "--help").stdout
    assert "examples:" in help_text and "--smart-host HOST" in help_text
    assert "--require-tls, --no-require-tls" in help_text
    assert run("--version").stdout.startswith("remediate ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "2016", "--port", "25"], "the following arguments are required: --connector"),
        (["plan", "2016", "--connector", "X", "--port"], "argument --port: expected one argument"),
    ],
)
def test_argument_errors_are_one_line_with_a_hint(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"remediate: error: {message}",
        "hint: see 'remediate plan --help'",
    ]
