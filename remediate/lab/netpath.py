"""The network as the lab's transport server sees it, which need not be the admin's view.

A real transport server and the admin's workstation differ in firewalls, NAT and DNS
(issue 18: "a workstation often cannot reach port 25 or 587 at all, or sees split DNS").
``ServerNetwork`` gives the lab's server side its own path: ``routes`` maps a loopback
``(address, port)`` the server dials to the loopback ``(address, port)`` it really reaches
(a closed port plays a firewall that blocks the server; the smart host's port plays a path
only the server has). Test-NetConnection and the transport both dial through it.

Names other than ``localhost`` and loopback addresses are never resolved (the lab never
connects off this machine): they do not resolve, as a name DNS does not know.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

Endpoint = tuple[str, int]


@dataclass(frozen=True)
class ServerNetwork:
    routes: Mapping[Endpoint, Endpoint] = field(default_factory=dict)

    def resolve(self, host: str) -> str | None:
        """The address a host name resolves to on the server; None when it does not,
        ``""`` for an address off this machine (never dialled)."""
        name = host.strip().strip("[]")
        if name.lower() == "localhost":
            return "127.0.0.1"
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return None
        return str(address) if address.is_loopback else ""

    def dial(self, address: str, port: int) -> Endpoint:
        """Where a connection to ``address:port`` from the server really goes."""
        return self.routes.get((address, port), (address, port))


DIRECT = ServerNetwork()
