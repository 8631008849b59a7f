"""From event records to what to do: the playbook that applies and its inputs, prefilled.

``inputs`` uses the playbook's input names (FixOptions fields) for what can be applied as is
(connector, username, smart_hosts, protocol_logging) and ``failed_*`` for what the event
reports and a fix must compare against (the endpoint a 2002 could not reach)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from remediate.core.playbooks import find
from remediate.core.terminal import command_word
from remediate.diagnose.events import EventGroup, EventRecord

# How the transport names the mechanism in event 2016 (%3) -> the connector settings.
TRANSPORT_MECHANISMS = {
    "login": "BasicAuth or BasicAuthRequireTLS (AUTH LOGIN)",
    "gssapi": "ExchangeServer (Kerberos)",
    "ntlm": "ExchangeServer (NTLM)",
    "exchangeauth": "ExchangeServer",
}


@dataclass(frozen=True)
class Suggestion:
    """One readable group of events, the playbook for it and what to run next."""

    group: EventGroup
    playbook_id: str
    inputs: dict[str, Any]
    findings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def record(self) -> EventRecord:
        return self.group.record

    @property
    def commands(self) -> tuple[str, ...]:
        name = command_word(self.record.connector or "")
        event = self.record.event_id
        out = [f"remediate fix {event} --connector {name}"]
        if event == 2016:
            user = self.inputs.get("username")
            if user:
                out.append(
                    f"remediate apply 2016 --connector {name} --username {command_word(user)} "
                    "--reenter-credential"
                )
        out.append(f"remediate diagnose --connector {name} --profile PROFILE")
        return tuple(out)


def is_service_identity(user: str | None) -> bool:
    """2016's %5 names the transport's own identity when the connector holds no credential."""
    if not user:
        return True
    upper = user.upper()
    return user.endswith("$") or upper.startswith(("NT AUTHORITY\\", "NETWORK SERVICE", "SYSTEM"))


def suggest(group: EventGroup) -> Suggestion:
    record = group.record
    assert record.event_id is not None
    playbook = find(str(record.event_id))
    inputs: dict[str, Any] = {"connector": record.connector}
    findings: list[str] = []
    if record.event_id == 2016:
        inputs["smart_hosts"] = [record.target_server] if record.target_server else None
        mechanism = TRANSPORT_MECHANISMS.get((record.mechanism or "").lower())
        if mechanism:
            findings.append(f"mechanism {record.mechanism} means {mechanism} on the connector")
        if is_service_identity(record.user):
            findings.append(
                f"the connector presented {record.user or 'no name'}, the transport's own "
                "identity: it holds no credential (missing or wiped); enter the relay account"
            )
        else:
            inputs["username"] = record.user
            findings.append(
                f"the credential for {record.user} could not be initialised "
                f"({record.status}): re-enter its password, and check the mechanism and TLS"
            )
    elif record.event_id == 2002:
        host, port = split_endpoint(record.remote_endpoint or "")
        # The endpoint that failed, not the fix: the wizard compares it with the connector.
        inputs.update(protocol_logging="Verbose", failed_host=host, failed_port=port)
        findings.append(
            f"the connection to {record.remote_endpoint} failed at once: check that the smart "
            "host listens on that port and that the connector's SmartHosts and Port are right"
        )
    else:
        # A playbook's own event: a field named like one of its inputs prefills it.
        inputs.update({k: v for k, v in record.fields.items() if k in playbook.input_names})
        findings.append(f"{playbook.title}: {playbook.purpose}")
    return Suggestion(group, playbook.id, inputs, tuple(findings))


def split_endpoint(endpoint: str) -> tuple[str | None, int | None]:
    """``10.0.0.1:25`` or ``[2001:db8::1]:25`` -> host, port."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit():
        return (endpoint or None), None
    return host.strip("[]") or None, int(port)
