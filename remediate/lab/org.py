"""The simulated Exchange organisation: transport servers, Send connectors, their queues with
test messages, the Application log and the smart host's relay account.

Entry point for the protocol half (``server.Lab``)::

    org = Organization.open(state_path, reset=False, smart_host=("127.0.0.1", 2525),
                            closed_port=2599)
    org.relay_user, org.relay_password   # the account the lab smart host accepts
    org.events                           # Application-log events (AppEvent), oldest first
    org.connector("Outbound to Relay")   # a Connector (name, GUID or Server\\Name)
    org.close()                          # waits for deliveries in flight, saves

``state_path`` None keeps everything in memory. Otherwise the state is JSON written
atomically (temporary file + fsync + ``os.replace``) with mode 0600, because it holds the relay
password and the connectors' stored credentials as Active Directory would. A change marks the
state dirty; one background write follows within ``SAVE_DELAY`` seconds whatever the number of
changes (so a bulk run is not bound by rewriting the whole file per change), and ``close()``
writes at once. A crash loses at most the last ``SAVE_DELAY`` seconds, never the file.
A missing file, or ``reset=True``, starts from the seeded scenario (``seed.py``). When the lab
smart host or the closed port moved since the state was written, connectors that pointed at
the old ones are moved with them, so a restarted lab still reproduces the same events.

All reads and changes go through one lock; cmdlets get copies, never live objects.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from remediate.core.errors import UsageError
from remediate.lab.model import (
    RETRY_INTERVAL,
    AppEvent,
    Connector,
    ExchangeCertificate,
    OrgState,
    Queue,
    StateFileError,
    TransportServer,
    now,
)
from remediate.lab.seed import seed_state
from remediate.lab.transport import DeliveryRequest, deliver, wrap_last_error

# Seconds between a change and the write of the state file that holds it (debounced).
SAVE_DELAY = 0.5


class Organization:
    """The shared organisation behind every shell. Thread-safe: one re-entrant lock.

    ``config_delay`` (seconds) is how long a connector change takes to reach the transport:
    Get-SendConnector shows it at once (Active Directory), deliveries use it only
    ``config_delay`` seconds after it was made (exchange-notes.md, "Transport behaviour":
    AD replication and a configuration reload, not at once).
    """

    def __init__(
        self, state: OrgState, state_path: Path | None = None, *, config_delay: float = 0.0
    ) -> None:
        if config_delay < 0:
            raise UsageError("the configuration delay must be zero or more seconds")
        self._state = state
        self._path = Path(state_path) if state_path is not None else None
        self._lock = threading.RLock()
        self._deliveries: list[threading.Thread] = []
        self.config_delay = config_delay
        # Per connector GUID: (monotonic time of the change, the connector as changed).
        # What the state held at open has always been loaded by the transport.
        self._changes: dict[str, list[tuple[float, Connector]]] = {}
        self._dirty = False
        self._saver: threading.Timer | None = None
        self._write_lock = threading.Lock()  # one writer of the file at a time
        # Per connector object: its JSON text at the last write. A change replaces the
        # connector object (replace_connector), never changes it in place, so an object
        # seen before has the same text.
        self._connector_texts: dict[int, tuple[Connector, str]] = {}
        # Set by the Lab: the servers' own network path and their Send protocol logs.
        self.network: Any = None
        self.protocol_log: Any = None
        self._cmdlets_run: Counter[str] = Counter()  # an observation for tests and benchmarks

    def count_cmdlet(self, name: str) -> None:
        with self._lock:
            self._cmdlets_run[name] += 1

    def cmdlets_run(self) -> Counter[str]:
        """How many times each cmdlet ran (by the name its signature gives)."""
        with self._lock:
            return Counter(self._cmdlets_run)

    # --- opening and saving ----------------------------------------------------------------

    @classmethod
    def open(
        cls,
        state_path: Path | None,
        *,
        reset: bool = False,
        smart_host: tuple[str, int],
        closed_port: int,
        config_delay: float = 0.0,
    ) -> Organization:
        """Load ``state_path`` (or seed it when missing or ``reset``) for a lab whose smart
        host listens on ``smart_host`` and where nothing listens on ``closed_port``."""
        state: OrgState | None = None
        if state_path is not None and not reset and Path(state_path).exists():
            state = _read_state(Path(state_path))
            _follow_lab_addresses(state, smart_host, closed_port)
        if state is None:
            state = seed_state(smart_host=smart_host, closed_port=closed_port)
        org = cls(state, state_path, config_delay=config_delay)
        org._dirty = True
        org.flush()
        return org

    def save(self) -> None:
        """Mark the state changed: it is written within ``SAVE_DELAY`` seconds (debounced)."""
        if self._path is None:
            return
        with self._lock:
            self._dirty = True
            if self._saver is None:
                self._saver = threading.Timer(SAVE_DELAY, self.flush)
                self._saver.daemon = True
                self._saver.start()

    def flush(self) -> None:
        """Write the state now if it changed since the last write: atomically, 0600."""
        if self._path is None:
            return
        with self._write_lock:
            with self._lock:
                self._saver = None
                if not self._dirty:
                    return
                self._dirty = False
                snapshot = self._state.to_json(connectors=False)  # plain values
                connectors = self._connector_json()
            _write_private(self._path, _dump(snapshot, "connectors", connectors) + "\n")

    def close(self) -> None:
        self.wait_for_deliveries()
        with self._lock:
            saver, self._saver = self._saver, None
        if saver is not None:
            saver.cancel()
        self.flush()

    def _connector_json(self) -> list[str]:
        """Each connector's JSON text, reused for the objects unchanged since the last write
        (the whole state is written while changes arrive: issue 15)."""
        known, texts = self._connector_texts, {}
        for connector in self._state.connectors:
            seen = known.get(id(connector))
            if seen is None or seen[0] is not connector:
                seen = (connector, json.dumps(connector.to_json()))
            texts[id(connector)] = seen
        self._connector_texts = texts
        return [text for _, text in texts.values()]

    # --- reading ---------------------------------------------------------------------------

    @property
    def domain(self) -> str:
        return self._state.domain

    @property
    def relay_user(self) -> str:
        return self._state.relay_user

    @property
    def relay_password(self) -> str:
        return self._state.relay_password

    @property
    def smart_host(self) -> tuple[str, int]:
        return self._state.smart_host

    @property
    def closed_port(self) -> int:
        return self._state.closed_port

    @property
    def events(self) -> list[AppEvent]:
        with self._lock:
            return copy.deepcopy(self._state.events)

    @property
    def servers(self) -> list[TransportServer]:
        with self._lock:
            return copy.deepcopy(self._state.servers)

    @property
    def local_server(self) -> str:
        """The server the lab's shells run on (the first transport server, EX01)."""
        return self._state.servers[0].name

    def certificates(self, server: str | None = None) -> list[ExchangeCertificate]:
        with self._lock:
            found = [
                c
                for c in self._state.certificates
                if server is None or c.server.lower() == server.split(".")[0].lower()
            ]
            return [c.copy() for c in found]

    def server_fqdn(self, name: str) -> str:
        for server in self._state.servers:
            if server.name.lower() == name.lower():
                return server.fqdn
        return f"{name}.{self.domain}"

    def connectors(self) -> list[Connector]:
        with self._lock:
            return [c.copy() for c in self._state.connectors]

    def find_connector(self, identity: str) -> Connector | None:
        """By name, GUID (any case, braces allowed) or ``Server\\Name``; a copy or None."""
        key = identity.strip().strip("{}").lower()
        server, sep, rest = key.partition("\\")
        with self._lock:
            for connector in self._state.connectors:
                if key in (connector.name.lower(), connector.guid.lower()):
                    return connector.copy()
                sources = [s.lower() for s in connector.source_transport_servers]
                if sep and rest == connector.name.lower() and server in sources:
                    return connector.copy()
        return None

    def connector(self, identity: str) -> Connector:
        found = self.find_connector(identity)
        if found is None:
            raise KeyError(identity)
        return found

    def queues(self) -> list[Queue]:
        with self._lock:
            return copy.deepcopy(self._state.queues)

    # --- changing --------------------------------------------------------------------------

    def add_connectors(self, connectors: list[Connector]) -> None:
        """Append new connectors (no queue, no event) and save."""
        with self._lock:
            self._state.connectors.extend(c.copy() for c in connectors)
            self.save()

    def replace_connector(self, updated: Connector) -> None:
        """Store ``updated`` (matched by GUID) and save."""
        with self._lock:
            for index, connector in enumerate(self._state.connectors):
                if connector.guid == updated.guid:
                    history = self._changes.setdefault(
                        updated.guid, [(float("-inf"), connector.copy())]
                    )
                    updated = updated.copy()
                    updated.when_changed = now()
                    self._state.connectors[index] = updated
                    history.append((time.monotonic(), updated.copy()))
                    break
            else:
                raise KeyError(updated.guid)
            self.save()

    def transport_connector(self, guid: str) -> Connector:
        """The connector as the transport knows it: the newest change at least
        ``config_delay`` seconds old (a copy)."""
        with self._lock:
            history = self._changes.get(guid)
            if not history:
                return self._live_connector_by_guid(guid).copy()
            loaded = time.monotonic() - self.config_delay
            for changed_at, connector in reversed(history):
                if changed_at <= loaded:
                    return connector.copy()
            return history[0][1].copy()

    def add_event(
        self,
        event_id: int,
        level: str,
        category: str,
        message: str,
        fields: list[str],
        machine: str | None = None,
    ) -> AppEvent:
        """Log an event in the Application log of ``machine`` (an FQDN; default EX01's)."""
        with self._lock:
            record_id = max((e.record_id for e in self._state.events), default=0) + 1
            event = AppEvent(
                record_id=record_id,
                event_id=event_id,
                source="MSExchangeTransport",
                category=category,
                level=level,
                machine=machine or self._state.servers[0].fqdn,
                message=message,
                fields=list(fields),
            )
            self._state.events.append(event)
            self.save()
            return copy.deepcopy(event)

    def retry_queue(self, identity: str) -> bool:
        """Start a delivery attempt for the queue in the background, as Retry-Queue does.
        False when the queue is already being delivered or holds nothing to send."""
        with self._lock:
            queue = self._live_queue(identity)
            if queue.status in ("Active", "Connecting") or not queue.messages:
                return False
            request = DeliveryRequest(
                connector=self.transport_connector(queue.connector_guid),
                messages=copy.deepcopy(queue.messages),
                local_fqdn=self.server_fqdn(queue.server),
                **self._transport_extras(),
            )
            queue.status = "Active"
            thread = threading.Thread(
                target=self._deliver, args=(queue.identity, request, deliver), daemon=True
            )
            self._deliveries = [t for t in self._deliveries if t.is_alive()] + [thread]
            thread.start()
            return True

    def wait_for_deliveries(self, timeout: float = 60.0) -> None:
        with self._lock:
            pending = list(self._deliveries)
        for thread in pending:
            thread.join(timeout)

    # --- internals -------------------------------------------------------------------------

    def _transport_extras(self) -> dict[str, Any]:
        extras: dict[str, Any] = {"protocol_log": self.protocol_log}
        if self.network is not None:
            extras["network"] = self.network
        return extras

    def _deliver(self, identity: str, request: Any, deliver: Any) -> None:
        outcome = deliver(request)
        with self._lock:
            queue = self._live_queue(identity)
            sent = set(outcome.delivered)
            queue.messages = [m for m in queue.messages if m.message_id not in sent]
            stamp = now()
            if outcome.last_error is None:
                queue.status = "Ready"
                queue.last_error = ""
                queue.retry_count = 0
                queue.first_retry_time = queue.next_retry_time = None
            else:
                queue.status = "Retry"
                queue.last_error = wrap_last_error(
                    outcome.last_error, stamp, outcome.fqdn, outcome.ip
                )
                queue.retry_count += 1
                queue.first_retry_time = queue.first_retry_time or stamp
                queue.next_retry_time = stamp + RETRY_INTERVAL
            queue.last_retry_time = stamp
            for event in outcome.events:
                self.add_event(
                    event.event_id,
                    event.level,
                    event.category,
                    event.message,
                    event.fields,
                    machine=request.local_fqdn,
                )
            self.save()

    def _live_queue(self, identity: str) -> Queue:
        for queue in self._state.queues:
            if queue.identity.lower() == identity.lower():
                return queue
        raise KeyError(identity)

    def _live_connector_by_guid(self, guid: str) -> Connector:
        for connector in self._state.connectors:
            if connector.guid == guid:
                return connector
        raise KeyError(guid)


def _read_state(path: Path) -> OrgState:
    try:
        return OrgState.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StateFileError(
            f"the lab state file {path} cannot be read ({type(exc).__name__})",
            hint="start the lab with --reset to restore the seeded organisation",
        ) from None


def _follow_lab_addresses(state: OrgState, smart_host: tuple[str, int], closed_port: int) -> None:
    """Point connectors that used the previous run's smart host or closed port at this
    run's: those ports are the lab's own infrastructure, not the admin's settings."""
    moves = {state.smart_host[1]: smart_host[1], state.closed_port: closed_port}
    lab_names = {"localhost", "127.0.0.1", "::1", state.smart_host[0].lower()}
    for connector in state.connectors:
        hosts = {h.strip("[]").lower() for h in connector.smart_hosts}
        if hosts and hosts <= lab_names and connector.port in moves:
            connector.port = moves[connector.port]
    state.smart_host = smart_host
    state.closed_port = closed_port


def _dump(data: dict[str, Any], key: str, items: list[str]) -> str:
    """``json.dumps(data)`` where ``data[key]`` is the list whose items' JSON texts are
    ``items``."""
    fields = (
        f"{json.dumps(name)}: {'[' + ', '.join(items) + ']' if name == key else json.dumps(value)}"
        for name, value in data.items()
    )
    return "{" + ", ".join(fields) + "}"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
