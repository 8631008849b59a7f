"""After a change: watch the connector's queues on every source server and say whether mail
flows, still fails, or is not known.

Two facts of Exchange shape this (shared/exchange-notes.md, "Transport behaviour"):
- a connector has one queue per source transport server, and each must be read by name;
- a change reaches the Transport service only after AD replication and a configuration
  reload, so a retry right after Set-SendConnector may still use the old settings. While a
  queue keeps failing, the watch retries it every few seconds until ``wait`` runs out,
  saying it is waiting for Exchange to pick up the change.

"Mail flows" is said only when every queue that held messages before was seen empty after
the change; no queue seen, or one that vanished, is "not known", never success.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from remediate.core.exchange import QueueInfo, SendConnector

if TYPE_CHECKING:
    from remediate.remote.session import Session

RETRY_EVERY = 3.0  # seconds between retries of a queue still failing on the old settings
POLL_EVERY = 0.5


class MailFlow(StrEnum):
    FLOWS = "flows"
    FAILS = "fails"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class QueueVerdict:
    flow: MailFlow
    queues: tuple[QueueInfo, ...]
    reason: str

    def line(self) -> str:
        word = {
            MailFlow.FLOWS: "Mail flows",
            MailFlow.FAILS: "Mail still fails",
            MailFlow.UNKNOWN: "Whether mail flows is not known",
        }[self.flow]
        return f"{word}: {self.reason}."


def _servers(connector: SendConnector) -> str:
    return ", ".join(connector.source_transport_servers) or "the session's server"


def judge(
    connector: SendConnector, before: Sequence[QueueInfo], queues: Sequence[QueueInfo]
) -> QueueVerdict:
    """The verdict for the queues read now, given those read before the change."""
    seen = {q.identity.lower(): q for q in queues}
    waiting = [q for q in queues if q.message_count > 0]
    failing = [q for q in waiting if q.status.lower() == "retry" and q.last_error]
    had = [q for q in before if q.message_count > 0]
    if failing and len(failing) == len(waiting):
        names = ", ".join(q.identity for q in failing)
        return QueueVerdict(MailFlow.FAILS, tuple(queues), f"{names} in Retry")
    if waiting:
        names = ", ".join(f"{q.identity} ({q.status})" for q in waiting)
        return QueueVerdict(MailFlow.UNKNOWN, tuple(queues), f"still being delivered: {names}")
    if not queues:
        return QueueVerdict(
            MailFlow.UNKNOWN, (), f"no queue of this connector was found on {_servers(connector)}"
        )
    vanished = [q.identity for q in had if q.identity.lower() not in seen]
    if vanished:
        return QueueVerdict(
            MailFlow.UNKNOWN, tuple(queues), f"queue {', '.join(vanished)} is no longer listed"
        )
    if not had:
        return QueueVerdict(
            MailFlow.UNKNOWN,
            tuple(queues),
            "no message was waiting before the change, so no delivery has shown it working",
        )
    drained = ", ".join(q.identity for q in had)
    return QueueVerdict(MailFlow.FLOWS, tuple(queues), f"{drained} drained")


def watch(
    session: Session,
    connector: SendConnector,
    before: Sequence[QueueInfo],
    wait: float,
    *,
    say: Callable[[str], None] = lambda _line: None,
) -> QueueVerdict:
    """Poll (and re-retry while failing) until a verdict other than "still being delivered"
    holds with nothing left to wait for, or ``wait`` seconds pass."""
    deadline = time.monotonic() + wait
    retried = time.monotonic()
    told = False
    while True:
        verdict = judge(connector, before, session.get_queues(connector))
        now = time.monotonic()
        settled = verdict.flow is MailFlow.FLOWS or (
            verdict.flow is MailFlow.UNKNOWN and not verdict.reason.startswith("still")
        )
        if settled or now >= deadline:
            return verdict
        if verdict.flow is MailFlow.FAILS and now - retried >= RETRY_EVERY:
            if not told:
                say(
                    "Still failing: waiting for Exchange to pick up the change (it reaches "
                    "the Transport service after AD replication and a configuration reload); "
                    f"retrying every {RETRY_EVERY:g} s for up to {wait:g} s."
                )
                told = True
            for queue in verdict.queues:
                if queue.message_count > 0:
                    session.retry_queue(queue.identity)
            retried = now
        time.sleep(POLL_EVERY)


def queues_in(outputs: Sequence[QueueInfo]) -> list[QueueInfo]:
    """Queues as read, one per identity (the last reading wins)."""
    by_identity = {q.identity.lower(): q for q in outputs}
    return list(by_identity.values())
