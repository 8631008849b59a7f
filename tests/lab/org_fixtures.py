"""Fixtures for the lab's Exchange half: a seeded organisation on disk, the real aiosmtpd
smart host it points at, an ExchangeShell over it, and a host that records what cmdlets write.

Import the fixtures a test module uses by their function names (``org_fixture``,
``smart_host_fixture``, ...); tests ask for them by the short names (``org``, ``smart_host``).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from remediate.lab.api import CommandCall, LabObject
from remediate.lab.certs import LabCA
from remediate.lab.cmdlets import ExchangeShell
from remediate.lab.org import Organization
from remediate.lab.smarthost import SmartHost

RELAY = "Outbound to Relay"
PARTNER = "Outbound to Partner"
INTERNET = "Internet Mail"
ARCHIVE = "Outbound to Archive"


@dataclass
class RecordingHost:
    """A HostSink that keeps the lines cmdlets write."""

    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def write_host(self, line: str) -> None:
        self.lines.append(line)

    def write_warning(self, line: str) -> None:
        self.warnings.append(line)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def open_org(state: Path | None, smtp_port: int, *, reset: bool = False) -> Organization:
    return Organization.open(
        state, reset=reset, smart_host=("127.0.0.1", smtp_port), closed_port=free_port()
    )


def run(
    shell: ExchangeShell,
    name: str,
    *params: tuple[str | None, Any],
    host: RecordingHost | None = None,
    pipeline: list[LabObject] | None = None,
) -> list[LabObject]:
    call = CommandCall(name, list(params))
    return shell.invoke(call, pipeline or [], host or RecordingHost())


@pytest.fixture(name="lab_ca", scope="session")
def lab_ca_fixture() -> LabCA:
    return LabCA.create()


@pytest.fixture(name="org")
def org_fixture(tmp_path: Path) -> Iterator[Organization]:
    """The seeded organisation with its state file; the smart host port is reserved but
    nothing listens there (use ``smart_host`` for delivery)."""
    organization = open_org(tmp_path / "state.json", free_port())
    try:
        yield organization
    finally:
        organization.close()


@pytest.fixture(name="smart_host")
def smart_host_fixture(org: Organization, lab_ca: LabCA) -> Iterator[SmartHost]:
    """The real aiosmtpd smart host on the port the seeded connectors use."""
    host, port = org.smart_host
    server = SmartHost(
        (host, port), ca=lab_ca, relay_user=org.relay_user, relay_password=org.relay_password
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="shell")
def shell_fixture(org: Organization) -> ExchangeShell:
    return ExchangeShell(org)
