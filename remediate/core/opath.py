"""OPATH filters for Get-Queue/Retry-Queue, and EdgeSync connectors: the queue of a
connector is found by its NextHopConnector (the connector's GUID), quoted as OPATH wants."""

from __future__ import annotations

from remediate.core.exchange import (
    SendConnector,
)

EDGE_SYNC_PREFIX = "EdgeSync -"


def is_edge_sync(connector: str) -> bool:
    """The connectors EdgeSync creates ("EdgeSync - Site to Internet"): Exchange asks
    ShouldContinue for their SmartHosts/AddressSpaces changes, which only -Force answers
    (-Confirm:$false does not); exchange-notes.md, "Transport behaviour"."""
    return connector.strip().lower().startswith(EDGE_SYNC_PREFIX.lower())


def opath_literal(value: str) -> str:
    """A value inside an OPATH filter: single-quoted, an embedded ' doubled."""
    return "'" + value.replace("'", "''") + "'"


def connector_queue_filter(
    connector: SendConnector | None, smart_hosts: tuple[str, ...] | None
) -> str | None:
    """An OPATH filter naming the connector's smart-host queue, or None when unknown.

    By NextHopConnector (the GUID) when the connector was read, else by NextHopDomain, which
    for a smart-host queue is the connector's smart-host string (unverified for several
    smart hosts: joined with a comma here).
    """
    if connector is not None and connector.guid:
        return f"NextHopConnector -eq {opath_literal(connector.guid)}"
    if smart_hosts:
        return f"NextHopDomain -eq {opath_literal(','.join(smart_hosts))}"
    return None
