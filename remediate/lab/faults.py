"""Fault injection for tests: make the lab's endpoint slow, flaky or hostile on purpose.

Requests are numbered from 1 in the order the HTTP server reads them (every POST, whatever
its path or credentials). A ``*_on_request`` knob fires once, on that request only, so a
client that retries sees the lab recover.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from remediate.core.errors import UsageError


class FaultAction(Enum):
    NONE = "none"
    DROP = "drop"  # close the connection without an answer
    HTTP_500 = "http-500"  # a bare HTTP 500 without a SOAP body
    WSMAN_FAULT = "wsman-fault"  # HTTP 500 with a WSMan quota fault
    REFUSE_AUTH = "refuse-auth"  # 401 whatever the credentials


@dataclass(frozen=True)
class Faults:
    latency: float = 0.0  # seconds added before every answer
    drop_on_request: int | None = None
    http_500_on_request: int | None = None
    wsman_fault_on_request: int | None = None
    refuse_auth: bool = False

    def __post_init__(self) -> None:
        if self.latency < 0:
            raise UsageError("fault latency must be zero or more seconds")
        for name in ("drop_on_request", "http_500_on_request", "wsman_fault_on_request"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UsageError(f"{name.replace('_', ' ')} must be a request number from 1")


class FaultInjector:
    """Counts requests and says which fault, if any, the current one gets."""

    def __init__(self, faults: Faults, sleep: Callable[[float], None] = time.sleep) -> None:
        self.faults = faults
        self._sleep = sleep
        self._count = 0
        self._lock = threading.Lock()

    @property
    def requests_seen(self) -> int:
        return self._count

    def next_request(self) -> FaultAction:
        """Number this request, wait the configured latency, and name its fault."""
        if self.faults.latency:
            self._sleep(self.faults.latency)
        with self._lock:
            self._count += 1
            number = self._count
        f = self.faults
        if f.refuse_auth:
            return FaultAction.REFUSE_AUTH
        if number == f.drop_on_request:
            return FaultAction.DROP
        if number == f.http_500_on_request:
            return FaultAction.HTTP_500
        if number == f.wsman_fault_on_request:
            return FaultAction.WSMAN_FAULT
        return FaultAction.NONE
