"""Fixtures for the lab tests: a running Lab on free loopback ports, and bare pypsrp clients.

The Exchange half's own fixtures live in org_fixtures.py (owned by the Exchange half).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pypsrp.powershell import RunspacePool
from pypsrp.wsman import WSMan

from remediate.lab.faults import Faults
from remediate.lab.server import Lab


def lab_wsman(lab: Lab, *, password: str | None = None) -> WSMan:
    """A bare pypsrp WSMan connection to the lab, as a script would build it."""
    return WSMan(
        lab.host,
        port=lab.port,
        path="PowerShell",
        ssl=lab.tls,
        auth="basic",
        username=lab.admin_user,
        password=lab.admin_password if password is None else password,
        encryption="never",
        cert_validation=str(lab.ca_file) if lab.tls else False,
        connection_timeout=5,
        reconnection_retries=0,
    )


def lab_pool(lab: Lab, **kwargs: object) -> RunspacePool:
    return RunspacePool(lab_wsman(lab), configuration_name="Microsoft.Exchange", **kwargs)


def start_lab(tmp_path: Path, **kwargs: object) -> Lab:
    kwargs.setdefault("state_file", tmp_path / "lab-state.json")
    kwargs.setdefault("workdir", tmp_path / "lab")
    lab = Lab(**kwargs)  # type: ignore[arg-type]
    lab.start()
    return lab


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    running = start_lab(tmp_path)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def tls_lab(tmp_path: Path) -> Iterator[Lab]:
    running = start_lab(tmp_path, tls=True)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def make_lab(tmp_path: Path) -> Iterator[object]:
    """Start labs with custom options (faults, state file); all stopped at the end."""
    started: list[Lab] = []

    def factory(faults: Faults | None = None, **kwargs: object) -> Lab:
        running = start_lab(tmp_path, faults=faults, **kwargs)
        started.append(running)
        return running

    try:
        yield factory
    finally:
        for running in started:
            running.stop()
