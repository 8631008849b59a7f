"""Helpers for bulk end-to-end tests: several labs at once, rows naming them, the installed
``remediate bulk`` run in a subprocess with its own config/state directories."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from remediate.lab.server import Lab
from tests.lab.lab_helpers import start_lab
from tests.secret_service import run_remediate

ADMIN_PASSWORD = "Lab-Admin-Pw-7"  # one admin password for all labs: stdin line 1
RELAY_SECRET = "Shared-Relay-Secret-42"  # the run's shared relay secret: stdin line 2


def start_labs(tmp_path: Path, count: int, **kwargs: Any) -> list[Lab]:
    labs = []
    for number in range(1, count + 1):
        labs.append(
            start_lab(
                tmp_path / f"lab{number}",
                admin_password=ADMIN_PASSWORD,
                state_file=tmp_path / f"lab{number}-state.json",
                workdir=tmp_path / f"lab{number}",
                **kwargs,
            )
        )
    return labs


def cli_env(tmp_path: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """No keyring (a backend that always fails), fresh config and state directories."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    return {**env, **(extra or {})}


def endpoint_keys(lab: Lab) -> str:
    return f"endpoint: {lab.endpoint_url}\n    auth: basic\n    user: {lab.admin_user}\n"


def row(lab: Lab, **settings: Any) -> str:
    lines = [f"  - {endpoint_keys(lab)}"]
    for key, value in settings.items():
        lines.append(f"    {key}: {json.dumps(value)}\n")
    return "".join(lines)


def write_rows(path: Path, rows: list[str]) -> Path:
    path.write_text("connectors:\n" + "".join(rows), encoding="utf-8")
    return path


def bulk(
    env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    given = stdin if stdin is not None else f"{ADMIN_PASSWORD}\n{RELAY_SECRET}\n"
    return run_remediate(env, "bulk", *args, stdin=given, timeout=timeout)


def report_statuses(path: Path) -> dict[tuple[str, str], str]:
    """(endpoint URL, connector) -> status, from a JSON report."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {
        (e["endpoint"], c["connector"]): c["status"]
        for e in data["endpoints"]
        for c in e["connectors"]
    }


def backups(env: dict[str, str]) -> list[Path]:
    directory = Path(env["XDG_STATE_HOME"]) / "remediate" / "backups"
    return sorted(directory.glob("*.json")) if directory.exists() else []
