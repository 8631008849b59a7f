"""Canary for the guided fix: `remediate fix 2016 --answers` with the relay password
typed on stdin (twice, as the wizard asks) and the admin password from the keyring, through a
-WhatIf run, the apply, and a saved script; the passwords are then searched for in stdout,
stderr, every file written under the run's HOME/XDG directories (profiles, backups, undo
scripts, audit log, saved script), and the command line and environment of the running
process (sampled from /proc).

Excluded, and why: the lab's own directory (its state file is the server side, as Exchange
and Active Directory hold the relay account's password)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from remediate.lab.server import Lab
from tests.e2e.conftest import EXE, PROFILE, RELAY, Cli

pytestmark = [pytest.mark.e2e, pytest.mark.keyring]


def run_sampled(cli: Cli, args: list[str], stdin: str) -> tuple[int, str, str, list[bytes]]:
    """Run the executable and sample its /proc cmdline and environ while it runs."""
    with subprocess.Popen(
        [str(EXE), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli.env,
        text=True,
    ) as process:
        assert process.stdin is not None
        process.stdin.write(stdin)
        process.stdin.close()
        samples: list[bytes] = []
        while process.poll() is None:
            for name in ("cmdline", "environ"):
                try:
                    samples.append(Path(f"/proc/{process.pid}/{name}").read_bytes())
                except OSError:
                    pass
            time.sleep(0.02)
        out = process.stdout.read() if process.stdout else ""
        err = process.stderr.read() if process.stderr else ""
    return process.returncode, out, err, samples


def files_under(root: Path, skip: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and skip not in p.parents]


def test_wizard_passwords_are_found_nowhere(cli: Cli, relay_lab: Lab, tmp_path: Path) -> None:
    cli.save_profile(relay_lab.endpoint_url, relay_lab.admin_user, relay_lab.admin_password)
    relay = relay_lab.relay_password
    answers = tmp_path / "answers.yaml"
    script = tmp_path / "state" / "fix.ps1"
    answers.write_text(
        f"event: 2016\nconnection: {PROFILE}\nconnector: {RELAY}\n"
        f"mechanism: BasicAuthRequireTLS\nusername: {relay_lab.relay_user}\n"
        "password_source: type\nsave_password: false\naction: what-if\n"
        "apply_after_what_if: true\n",
        encoding="utf-8",
    )
    status, out, err, samples = run_sampled(
        cli, ["fix", "--answers", str(answers), "--queue-wait", "15"], f"{relay}\n{relay}\n"
    )
    assert status == 0, err + out
    assert "Mail flows: " in out
    assert len(relay_lab.smart_host.messages) == 5  # EX01 and EX02
    assert samples, "the process was never sampled"

    saved = tmp_path / "save.yaml"
    saved.write_text(
        f"event: 2016\nconnection: {PROFILE}\nconnector: {RELAY}\nusername: x@contoso.lab\n"
        f"password_source: type\nsave_password: false\naction: save\nscript_path: {script}\n",
        encoding="utf-8",
    )
    status2, out2, err2, samples2 = run_sampled(
        cli, ["fix", "--answers", str(saved)], f"{relay}\n{relay}\n"
    )
    assert status2 == 0, err2 + out2
    assert script.is_file()

    written = files_under(tmp_path, skip=tmp_path / "lab")
    assert any(p.name == "audit.log" for p in written)
    assert any(p.suffix == ".ps1" for p in written)
    for secret in (relay, relay_lab.admin_password):
        for text in (out, err, out2, err2):
            assert secret not in text
        for sample in samples + samples2:
            assert secret.encode() not in sample
        for path in written:
            assert secret.encode() not in path.read_bytes(), path
