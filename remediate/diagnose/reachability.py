"""Can this machine reach a connector's smart hosts? DNS, TCP connect, SMTP banner.

The ping / pathping style test of the 2002 documentation, done as what the transport itself
does first: resolve the smart host, connect to the connector's port, read the ``220`` banner.
Each step is timed. These checks run from the machine remediate runs on, NOT from the
transport servers: a firewall or DNS view that differs between the two gives different
answers, so a clean result here does not clear the transport server's path.
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from remediate.core.exchange import SendConnector

FROM_HERE = (
    "these checks ran from this machine, not from the transport servers; "
    "run them on a transport server too (Test-NetConnection <host> -Port <port>)"
)
DEFAULT_TIMEOUT = 5.0
_BANNER_LIMIT = 4096

Resolver = Callable[..., list[tuple[Any, ...]]]


class Outcome(StrEnum):
    """What happened to one address (or to the name, when it did not resolve)."""

    BANNER = "banner"  # connected and read a 220 greeting
    REJECTED = "rejected"  # connected, but the greeting was not 220 (e.g. 554)
    NO_BANNER = "no-banner"  # connected, but no greeting came (closed or silent)
    REFUSED = "refused"  # nothing listens on the port (Winsock 10061)
    TIMED_OUT = "timed-out"  # no answer at all (Winsock 10060): firewall, host down
    NO_ROUTE = "no-route"  # network or host unreachable
    NOT_RESOLVED = "not-resolved"  # DNS has no address for the name
    ERROR = "error"  # any other socket error


_MEANING = {
    Outcome.BANNER: "an SMTP server answered",
    Outcome.REJECTED: "an SMTP server answered but refuses sessions",
    Outcome.NO_BANNER: "the port accepted the connection but sent no SMTP greeting",
    Outcome.REFUSED: "nothing accepts connections on that port",
    Outcome.TIMED_OUT: "no answer: a firewall drops the packets or the host is down",
    Outcome.NO_ROUTE: "no network route to the host",
    Outcome.NOT_RESOLVED: "the name does not resolve",
    Outcome.ERROR: "the connection failed",
}


@dataclass(frozen=True)
class AddressCheck:
    """One resolved address: TCP connect, then the SMTP greeting."""

    address: str
    outcome: Outcome
    connect_ms: float | None = None
    banner: str | None = None
    banner_ms: float | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "outcome": str(self.outcome),
            "connect_ms": self.connect_ms,
            "banner": self.banner,
            "banner_ms": self.banner_ms,
            "error": self.error,
        }


@dataclass(frozen=True)
class HostCheck:
    """One smart host on one port, from this machine."""

    host: str
    port: int
    addresses: tuple[str, ...]
    resolve_ms: float
    attempts: tuple[AddressCheck, ...]
    resolve_error: str | None = None

    @property
    def outcome(self) -> Outcome:
        """The best outcome over all addresses (a banner anywhere means reachable)."""
        if not self.attempts:
            return Outcome.NOT_RESOLVED
        order = list(Outcome)
        return min((a.outcome for a in self.attempts), key=order.index)

    @property
    def reachable(self) -> bool:
        return self.outcome is Outcome.BANNER

    @property
    def meaning(self) -> str:
        return _MEANING[self.outcome]

    def lines(self) -> list[str]:
        """Readable lines for the terminal."""
        head = f"{self.host}:{self.port}  {self.outcome}: {self.meaning}"
        if self.resolve_error is not None:
            return [head, f"  DNS: {self.resolve_error} ({self.resolve_ms:.0f} ms)"]
        out = [head, f"  DNS: {', '.join(self.addresses)} ({self.resolve_ms:.0f} ms)"]
        for attempt in self.attempts:
            text = f"  {attempt.address}: {attempt.outcome}"
            if attempt.connect_ms is not None:
                text += f", connected in {attempt.connect_ms:.0f} ms"
            if attempt.banner is not None:
                text += f", banner {attempt.banner!r} in {attempt.banner_ms:.0f} ms"
            if attempt.error:
                text += f" ({attempt.error})"
            out.append(text)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "port": self.port,
            "outcome": str(self.outcome),
            "meaning": self.meaning,
            "addresses": list(self.addresses),
            "resolve_ms": self.resolve_ms,
            "resolve_error": self.resolve_error,
            "attempts": [a.to_json() for a in self.attempts],
            "checked_from": FROM_HERE,
        }


def check_host(
    host: str,
    port: int,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    resolver: Resolver = socket.getaddrinfo,
) -> HostCheck:
    """Resolve ``host`` (``[1.2.3.4]`` literals too), then connect to every address."""
    name = host.strip().strip("[]")
    started = time.perf_counter()
    try:
        infos = resolver(name, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return HostCheck(host, port, (), _ms(started), (), resolve_error=_gai_text(exc))
    resolve_ms = _ms(started)
    targets: list[tuple[int, tuple[Any, ...]]] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if (family, sockaddr) not in targets:
            targets.append((family, sockaddr))
    attempts = tuple(_attempt(family, sockaddr, timeout) for family, sockaddr in targets)
    addresses = tuple(a.address for a in attempts)
    return HostCheck(host, port, addresses, resolve_ms, attempts)


def check_connector(
    connector: SendConnector,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    resolver: Resolver = socket.getaddrinfo,
) -> list[HostCheck]:
    """Every smart host of the connector on its port; [] for a DNS-routed connector."""
    if connector.dns_routing_enabled:
        return []
    return [
        check_host(h, connector.port, timeout=timeout, resolver=resolver)
        for h in connector.smart_hosts
    ]


def _attempt(family: int, sockaddr: tuple[Any, ...], timeout: float) -> AddressCheck:
    address = str(sockaddr[0])
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        started = time.perf_counter()
        try:
            sock.connect(sockaddr)
        except OSError as exc:
            return AddressCheck(address, _connect_outcome(exc), error=_os_text(exc))
        connect_ms = _ms(started)
        started = time.perf_counter()
        banner = _read_banner(sock)
        banner_ms = _ms(started)
    finally:
        sock.close()
    if banner is None:
        return AddressCheck(address, Outcome.NO_BANNER, connect_ms, None, banner_ms)
    outcome = Outcome.BANNER if banner.startswith("220") else Outcome.REJECTED
    return AddressCheck(address, outcome, connect_ms, banner, banner_ms)


def _read_banner(sock: socket.socket) -> str | None:
    """The greeting's last line (``220 host ESMTP``), or None when none came in time.
    Multi-line greetings (``220-``) are read to their last line."""
    data = b""
    try:
        while len(data) < _BANNER_LIMIT:
            chunk = sock.recv(1024)
            if not chunk:
                break
            data += chunk
            lines = data.split(b"\r\n")
            complete = [line for line in lines[:-1] if line]
            if complete and complete[-1][3:4] != b"-":
                return complete[-1].decode("ascii", errors="replace")
    except OSError:
        pass
    text = data.decode("ascii", errors="replace").strip()
    return text.splitlines()[-1] if text else None


def _connect_outcome(exc: OSError) -> Outcome:
    if isinstance(exc, TimeoutError | socket.timeout):
        return Outcome.TIMED_OUT
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return Outcome.REFUSED
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
        return Outcome.NO_ROUTE
    if exc.errno == errno.ETIMEDOUT:
        return Outcome.TIMED_OUT
    return Outcome.ERROR


def _os_text(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _gai_text(exc: Exception) -> str:
    if isinstance(exc, socket.gaierror) and exc.args and len(exc.args) > 1:
        return str(exc.args[1])
    return str(exc) or type(exc).__name__


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
