"""Fixtures for the lab tests: a running Lab on free loopback ports, and bare pypsrp clients.

The Exchange half's own fixtures live in org_fixtures.py (owned by the Exchange half).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from remediate.lab.faults import Faults
from remediate.lab.server import Lab
from tests.lab.lab_helpers import start_lab


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
