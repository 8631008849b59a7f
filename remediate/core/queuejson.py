"""The one JSON shape of a smart-host queue (schema ``queue``), with the cause remediate reads
in its LastError. ``show --queues --json``, ``diagnose --connector --json``, the ``apply``
and ``undo`` run documents, the escalation bundle and the Ansible collection's modules all
print this shape; snake_case keys, like every other ``--json`` key that is not an Exchange
property name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from remediate.core.last_error import parse_last_error

if TYPE_CHECKING:
    from remediate.core.exchange import QueueInfo


def queue_json(queue: QueueInfo) -> dict[str, Any]:
    """``cause``, ``explanation`` and ``action`` are None when LastError is empty or says
    nothing remediate can read."""
    found = parse_last_error(queue.last_error)
    return {
        "identity": queue.identity,
        "server": queue.server,
        "status": queue.status,
        "message_count": queue.message_count,
        "next_hop_domain": queue.next_hop_domain,
        "next_hop_connector": queue.next_hop_connector,
        "last_error": queue.last_error,
        "cause": str(found.cause) if found else None,
        "explanation": found.summary if found else None,
        "action": found.action if found else None,
    }
