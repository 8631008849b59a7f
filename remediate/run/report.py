"""Plain-text reports after a run: before/after of the changed settings, queue status.

The credential appears as its user name only (Exchange never returns a password).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from remediate.core.exchange import QueueInfo, SendConnector
from remediate.core.last_error import parse_last_error
from remediate.core.output import table as cell_table


def _text(value: Any) -> str:
    if value is None or value == []:
        return "(none)"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def differences(before: SendConnector, after: SendConnector) -> list[tuple[str, Any, Any]]:
    """(Exchange property, before, after) for every property that differs."""
    old, new = before.to_json(), after.to_json()
    return [(name, old[name], new[name]) for name in old if old[name] != new.get(name)]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Aligned columns; widths in terminal cells (``remediate.core.output.table``)."""

    return cell_table(header, rows)


CONNECTOR_COLUMNS = (
    "NAME",
    "SMART HOSTS",
    "PORT",
    "AUTH",
    "CREDENTIAL",
    "DNS ROUTING",
    "TLS",
    "ENABLED",
)


def connector_table(connectors: Sequence[SendConnector]) -> list[str]:
    """The one connector table: ``remediate show`` and the wizard print the same columns
    and values."""
    if not connectors:
        return ["No Send connectors."]
    return table(CONNECTOR_COLUMNS, [_connector_row(c) for c in connectors])


def _connector_row(c: SendConnector) -> tuple[str, ...]:
    return (
        c.name,
        ", ".join(c.smart_hosts) or "-",
        str(c.port),
        str(c.smart_host_auth_mechanism),
        str(c.credential),
        "yes" if c.dns_routing_enabled else "no",
        tls_summary(c),
        "yes" if c.enabled else "no",
    )


def tls_summary(c: SendConnector) -> str:
    """RequireTLS / IgnoreSTARTTLS / TlsAuthLevel / TlsDomain in a few words."""
    if c.ignore_starttls:
        text = "ignored (IgnoreSTARTTLS)"
    else:
        text = "required" if c.require_tls else "opportunistic"
    if c.tls_auth_level is not None:
        text += f", {c.tls_auth_level}"
    if c.tls_domain:
        text += f" {c.tls_domain}"
    return text


def before_after(before: SendConnector, after: SendConnector) -> list[str]:
    """A table of the properties that changed, or one line saying none did."""
    rows = [(name, _text(old), _text(new)) for name, old, new in differences(before, after)]
    if not rows:
        return [f"No setting of '{after.name}' changed."]
    return table(("PROPERTY", "BEFORE", "AFTER"), rows)


def queue_lines(queues: Sequence[QueueInfo]) -> list[str]:
    """The queues' status, messages and LastError (with the diagnosis when one is known)."""

    if not queues:
        return ["No smart-host queue for this connector (nothing waiting to be sent)."]
    rows = [(q.identity, q.status, str(q.message_count), q.last_error or "") for q in queues]
    lines = table(("QUEUE", "STATUS", "MESSAGES", "LAST ERROR"), rows)
    for queue in queues:
        diagnosis = parse_last_error(queue.last_error)
        if diagnosis is not None:
            lines.append(f"{queue.identity}: {diagnosis.summary}; {diagnosis.action}")
    return lines
