"""Fixtures for the Session tests: a running lab and Connection objects pointing at it."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from remediate.lab.server import Lab
from remediate.remote.connections import AuthMethod, Connection
from tests.lab.lab_helpers import start_lab


def lab_connection(lab: Lab, **overrides: Any) -> Connection:
    """A Connection to ``lab`` as an admin would configure it (basic auth, lab CA)."""
    values: dict[str, Any] = {
        "server": lab.host,
        "port": lab.port,
        "scheme": "https" if lab.tls else "http",
        "auth": AuthMethod.BASIC,
        "username": lab.admin_user,
        "ca_file": lab.ca_file if lab.tls else None,
        "connect_timeout": 5.0,
        "operation_timeout": 10.0,
    }
    values.update(overrides)
    return Connection(**values)


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(name="lab")
def lab_fixture(tmp_path: Path) -> Iterator[Lab]:
    running = start_lab(tmp_path)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(name="tls_lab")
def tls_lab_fixture(tmp_path: Path) -> Iterator[Lab]:
    running = start_lab(tmp_path / "tls", tls=True)
    try:
        yield running
    finally:
        running.stop()


class WarningShell:
    """The lab's real ExchangeShell, plus the warning Exchange writes when Set-SendConnector
    changes nothing (the lab itself never warns, so this wrapper adds it)."""

    def __init__(self, org: Any) -> None:
        from remediate.lab.cmdlets import ExchangeShell

        self._shell = ExchangeShell(org)

    def invoke(self, call: Any, pipeline_input: list[Any], host: Any) -> list[Any]:
        result = self._shell.invoke(call, pipeline_input, host)
        if call.name == "Set-SendConnector" and len(call.parameters) == 1:
            host.write_warning(
                "The command completed successfully but no settings have been modified."
            )
        return result


@dataclasses.dataclass
class CountingEndpoint:
    """A second /PowerShell endpoint over ``lab``'s organisation that counts shells created."""

    lab: Lab
    shells_created: int = 0
    port: int = 0

    def connection(self) -> Connection:
        return dataclasses.replace(lab_connection(self.lab), port=self.port)


@pytest.fixture(name="counting_endpoint")
def counting_endpoint_fixture(lab: Lab) -> Iterator[CountingEndpoint]:
    import threading

    from remediate.lab.auth import AuthConfig
    from remediate.lab.endpoint import Endpoint
    from remediate.lab.faults import FaultInjector, Faults
    from remediate.lab.http_server import LabHTTPServer

    counter = CountingEndpoint(lab)

    def factory() -> WarningShell:
        counter.shells_created += 1
        return WarningShell(lab.organization)

    endpoint = Endpoint(factory, machine="EX01", url=lab.endpoint_url, owner=lab.admin_user)
    server = LabHTTPServer(
        (lab.host, 0),
        endpoint,
        auth=AuthConfig.basic(lab.admin_user, lab.admin_password),
        faults=FaultInjector(Faults()),
    )
    counter.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield counter
    finally:
        server.shutdown()
        server.server_close()
        endpoint.close()
