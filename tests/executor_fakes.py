"""A fake Session for the executor's unit tests.

It is a fake (not the lab) because failure ordering, a Ctrl-C in the middle of a step and a
credential lookup that fails are much easier to force exactly here; every end-to-end test in
tests/e2e/ runs the real executable against the real lab.
"""

from __future__ import annotations

from collections.abc import Callable

from remediate.core.exchange import AuthMechanism, SendConnector
from remediate.core.options import FixOptions
from remediate.core.plan import CredentialRef, Plan, Step
from remediate.core.planner import build_plan
from remediate.core.playbooks import find
from remediate.remote.session import RemoteError, StepResult

NAME = "Outbound to Relay"
USER = "relay@contoso.com"
BROKEN = SendConnector(
    name=NAME,
    guid="6f1c0c1e-0000-4000-8000-000000000001",
    smart_hosts=("smtp.relay.example",),
    dns_routing_enabled=False,
    smart_host_auth_mechanism=AuthMechanism.BASIC_AUTH_REQUIRE_TLS,
    port=587,
)


def relay_plan(*, what_if: bool = False) -> Plan:
    """The lab's 2016 repair: credential re-entered, RequireTLS on (two Set steps)."""
    options = FixOptions(
        connector=NAME,
        mechanism=AuthMechanism.BASIC_AUTH_REQUIRE_TLS,
        username=USER,
        require_tls=True,
    )
    return build_plan(find("2016"), options, current=BROKEN, what_if=what_if)


class FakeSession:
    """Answers every step ok, except ``fail_at`` (an error record), ``interrupt_at``
    (KeyboardInterrupt while sent) and ``raise_at`` (index, exception: a transport failure);
    indexes count steps sent. Records what it was sent and
    the passwords the credential callback produced."""

    def __init__(
        self,
        *,
        fail_at: int | None = None,
        interrupt_at: int | None = None,
        raise_at: tuple[int, Exception] | None = None,
        warnings: list[str] | None = None,
        after: SendConnector = BROKEN,
    ) -> None:
        self.fail_at = fail_at
        self.interrupt_at = interrupt_at
        self.raise_at = raise_at
        self.warnings = warnings or []
        self.after = after
        self.sent: list[Step] = []
        self.passwords: list[str] = []

    def run(
        self, step: Step, credential: Callable[[CredentialRef], str] | None = None
    ) -> StepResult:
        index = len(self.sent)
        self.sent.append(step)
        if index == self.interrupt_at:
            raise KeyboardInterrupt
        if self.raise_at is not None and index == self.raise_at[0]:
            raise self.raise_at[1]
        ref = step.credential
        if ref is not None:
            assert credential is not None
            self.passwords.append(credential(ref))
        if index == self.fail_at:
            error = RemoteError("InvalidOperation", "Refused,Set-SendConnector", "refused", NAME)
            return StepResult(step, False, [], [error], [], [])
        what_if = [f"What if: {step.cmdlet}"] if step.has_param("WhatIf") else []
        return StepResult(step, True, [], [], list(self.warnings), what_if)

    def get_connectors(self, identity: str | None = None) -> list[SendConnector]:
        return [self.after]
