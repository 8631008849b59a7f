"""The installed `remediate demo` in a real pseudo-terminal (pexpect), answered like a
newcomer would, until the lab's smart host has received the queued messages."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pexpect
import pytest

pytestmark = pytest.mark.e2e

ENTER = "\r"
REMEDIATE = Path(sys.executable).with_name("remediate")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBUS_", "XDG_"))}
    env.update(
        PROMPT_TOOLKIT_NO_CPR="1",
        HOME=str(tmp_path),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        TERM="xterm",
        COLUMNS="160",
        LINES="50",
    )
    return env


def test_demo_in_a_terminal_drains_the_queue_into_the_smart_host(tmp_path: Path) -> None:
    assert REMEDIATE.exists(), f"remediate is not installed next to {sys.executable}"
    child = pexpect.spawn(
        str(REMEDIATE),
        ["demo", "--keep"],  # keep the temporary records to look at them below
        env=_env(tmp_path),
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 160),
    )
    try:
        for prompt in (
            "Which Send connector",  # preselected: Outbound to Relay
            "Authentication mechanism",  # recommended first
            "Relay account user name",  # prefilled with the lab's relay account
            "Password for relay@contoso.lab",  # no keyring here: the lab's password is offered
            "What now",  # apply
        ):
            child.expect_exact(prompt)
            child.send(ENTER)
        child.expect_exact("Mail flows: ")
        child.expect(r"Audit log: (\S+)")
        audit_log = Path(child.match.group(1))
        child.expect_exact("The lab's smart host has received 5 message(s).")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    # the demo's records are kept apart from the audit log of real changes (--keep keeps them)
    assert audit_log.is_file() and audit_log.name == "audit.log"
    assert not (tmp_path / "state" / "remediate" / "audit.log").exists()
    shutil.rmtree(audit_log.parents[1])
