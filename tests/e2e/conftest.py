"""Fixtures for apply/undo/canary end-to-end tests: the INSTALLED ``remediate`` executable run
as a subprocess against a lab over real HTTP, with passwords in a real Secret Service.

``cli`` runs the executable with a per-test config and state directory (profiles, backups,
audit log) and remembers every run, so the canary test can search all that was printed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from remediate.lab.server import Lab
from tests.lab.lab_helpers import start_lab

EXE = Path(sys.executable).with_name("remediate")
RELAY = "Outbound to Relay"
PARTNER = "Outbound to Partner"
PROFILE = "lab"


@dataclass
class Cli:
    """The installed executable with one environment; every run is kept in ``runs``."""

    env: dict[str, str]
    runs: list[subprocess.CompletedProcess[str]] = field(default_factory=list)

    def __call__(
        self, *args: str, stdin: str = "", timeout: float = 90
    ) -> subprocess.CompletedProcess[str]:
        assert EXE.is_file(), f"the remediate executable is not installed at {EXE}"
        done = subprocess.run(
            [str(EXE), *args],
            input=stdin,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self.runs.append(done)
        return done

    @property
    def state_dir(self) -> Path:
        return Path(self.env["XDG_STATE_HOME"]) / "remediate"

    def backups(self) -> list[Path]:
        return sorted((self.state_dir / "backups").glob("*.json"))

    def audit_lines(self) -> list[dict[str, Any]]:
        log = self.state_dir / "audit.log"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def save_profile(self, endpoint: str, admin_user: str, admin_password: str) -> None:
        """Profile ``lab`` (NTLM) with its admin password in the keyring (through stdin)."""
        done = self(
            "connect", "add", PROFILE, "--server", endpoint, "--auth", "ntlm",
            "--user", admin_user, "--save-password", "--password-stdin",
            stdin=admin_password + "\n",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    def save_relay(self, user: str, password: str) -> None:
        done = self("connect", "relay", user, "--password-stdin", stdin=password + "\n")
        assert done.returncode == 0, done.stderr

    def forget_relay(self, user: str) -> None:
        self("connect", "relay", user, "--delete")

    def connector(self, name: str) -> dict[str, Any]:
        """The connector as ``remediate show --json`` reports it (through the profile)."""
        done = self("show", "--profile", PROFILE, "--connector", name, "--json")
        assert done.returncode == 0, done.stderr
        [item] = json.loads(done.stdout)
        return item


@pytest.fixture
def cli(secret_service: dict[str, str], tmp_path: Path) -> Cli:
    return Cli(
        {
            **secret_service,
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "XDG_STATE_HOME": str(tmp_path / "state"),
        }
    )


@pytest.fixture
def relay_lab(tmp_path: Path) -> Iterator[Lab]:
    """A fresh seeded lab in this process (its smart host's received messages are visible),
    logging in with NTLM and WinRM message encryption as the lab does by default."""
    (tmp_path / "lab").mkdir()
    lab = start_lab(tmp_path / "lab", auth="ntlm")
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def profiled(cli: Cli, relay_lab: Lab) -> Cli:
    """``cli`` with profile ``lab`` and both passwords (admin, relay) in the keyring."""
    cli.save_profile(relay_lab.endpoint_url, relay_lab.admin_user, relay_lab.admin_password)
    cli.save_relay(relay_lab.relay_user, relay_lab.relay_password)
    return cli
