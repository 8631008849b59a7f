"""Reachability of smart hosts against real loopback listeners: banner, refused, silent,
rejected, timed out, names that do not resolve."""

from __future__ import annotations

import errno
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from remediate.core.exchange import SendConnector
from remediate.diagnose.reachability import (
    FROM_HERE,
    Outcome,
    _connect_outcome,
    check_connector,
    check_host,
)


@contextmanager
def listener(greeting: bytes | None) -> Iterator[int]:
    """A real TCP server on 127.0.0.1 that sends ``greeting`` (None: says nothing)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if greeting is not None:
                conn.sendall(greeting)
            held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        server.close()
        for conn in held:
            conn.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_banner_is_read_and_timed() -> None:
    with listener(b"220 relay.contoso.lab ESMTP ready\r\n") as port:
        check = check_host("127.0.0.1", port)
    assert check.outcome is Outcome.BANNER and check.reachable
    (attempt,) = check.attempts
    assert attempt.banner == "220 relay.contoso.lab ESMTP ready"
    assert attempt.connect_ms is not None and attempt.banner_ms is not None
    assert check.addresses == ("127.0.0.1",)
    assert "banner '220 relay.contoso.lab ESMTP ready'" in "\n".join(check.lines())


def test_multi_line_greeting_is_read_to_its_last_line() -> None:
    with listener(b"220-relay.contoso.lab welcome\r\n220 ESMTP ready\r\n") as port:
        check = check_host("[127.0.0.1]", port)
    assert check.attempts[0].banner == "220 ESMTP ready" and check.reachable


def test_a_554_greeting_is_a_rejection_not_reachable() -> None:
    with listener(b"554 5.7.1 no service for you\r\n") as port:
        check = check_host("127.0.0.1", port)
    assert check.outcome is Outcome.REJECTED and not check.reachable
    assert "refuses sessions" in check.meaning


def test_a_silent_port_gives_no_banner() -> None:
    with listener(None) as port:
        check = check_host("127.0.0.1", port, timeout=0.3)
    assert check.outcome is Outcome.NO_BANNER
    assert check.attempts[0].connect_ms is not None and check.attempts[0].banner is None


def test_closed_port_is_refused() -> None:
    check = check_host("127.0.0.1", closed_port())
    assert check.outcome is Outcome.REFUSED
    assert check.attempts[0].error and check.attempts[0].connect_ms is None
    assert "nothing accepts connections" in check.lines()[0]


def test_full_accept_queue_times_out() -> None:
    """A listener that never accepts, with its backlog full: Linux drops further SYNs, so the
    connection really times out."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        check = check_host("127.0.0.1", port, timeout=0.5)
    finally:
        for filler in fillers:
            filler.close()
        server.close()
    assert check.outcome is Outcome.TIMED_OUT


def test_name_that_does_not_resolve() -> None:
    check = check_host("relay.fabrikam.invalid", 25)
    assert check.outcome is Outcome.NOT_RESOLVED and not check.reachable
    assert check.resolve_error and check.addresses == () and check.attempts == ()
    assert check.lines()[1].startswith("  DNS: ")
    assert check.to_json()["checked_from"] == FROM_HERE


def test_no_route_errno_maps_to_no_route() -> None:
    """Only loopback may be a target here, so an unreachable network cannot be provoked:
    the errno the kernel gives for it is mapped directly."""
    assert _connect_outcome(OSError(errno.ENETUNREACH, "unreachable")) is Outcome.NO_ROUTE
    assert _connect_outcome(OSError(errno.EHOSTUNREACH, "no host")) is Outcome.NO_ROUTE
    assert _connect_outcome(TimeoutError()) is Outcome.TIMED_OUT


def test_connector_checks_every_smart_host_on_its_port() -> None:
    with listener(b"220 ok\r\n") as port:
        connector = SendConnector(
            "Outbound to Partner",
            smart_hosts=("localhost", "relay.fabrikam.invalid"),
            dns_routing_enabled=False,
            port=port,
        )
        checks = check_connector(connector)
    assert [c.host for c in checks] == ["localhost", "relay.fabrikam.invalid"]
    assert [c.port for c in checks] == [port, port]
    assert checks[0].reachable and checks[1].outcome is Outcome.NOT_RESOLVED
    assert check_connector(SendConnector("Internet Mail")) == []


def test_an_address_listed_twice_is_tried_once() -> None:
    """A resolver answering one address twice (as some DNS views do; no DNS server can be
    configured here, so the resolver is a stand-in)."""

    def resolver(host: str, port: int, **_: object) -> list[tuple[object, ...]]:
        entry = (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))
        return [entry, entry]

    check = check_host("relay.contoso.lab", closed_port(), resolver=resolver)
    assert check.addresses == ("127.0.0.1",)


@pytest.mark.e2e
def test_live_diagnose_shows_reachability_and_local_causes(tmp_path: Path) -> None:
    """`remediate diagnose --connector` through the installed executable against the lab."""
    from tests.lab.lab_helpers import start_lab
    from tests.ui.test_cli_diagnose import remediate

    lab = start_lab(tmp_path)
    try:
        login = ["--server", lab.endpoint_url, "--auth", "basic", "--user", lab.admin_user]
        login.append("--password-stdin")
        partner = remediate(
            "diagnose", "--connector", "Outbound to Partner", *login, "--json",
            stdin=lab.admin_password + "\n",
        )  # fmt: skip
        legacy = remediate(
            "diagnose", "--connector", "Outbound to Legacy", *login,
            stdin=lab.admin_password + "\n",
        )  # fmt: skip
    finally:
        lab.stop()
    assert partner.returncode == 0, partner.stderr
    live = json.loads(partner.stdout)["queues"]
    (host,) = live["reachability"]["hosts"]
    assert (host["host"], host["outcome"]) == ("localhost", "refused")
    assert live["reachability"]["checked_from"] == FROM_HERE
    assert any("nothing accepts connections" in cause for cause in live["local_causes"])
    assert legacy.returncode == 0, legacy.stderr
    assert "connector 'Outbound to Legacy' (DISABLED)" in legacy.stdout
    assert "  localhost:" in legacy.stdout and "banner: an SMTP server answered" in legacy.stdout
    assert "  - the connector is disabled" in legacy.stdout
