"""Findings before anything is touched: the connector's configuration, what the smart host
offers (from ``remediate.diagnose.probe``), reachability, and a queue's LastError explained.

Each ``Finding`` is one checklist line: ok / warn / fail with a one-line explanation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from remediate.core import preflight
from remediate.core.exchange import (
    AuthMechanism,
    CredentialState,
    ExchangeCertificate,
    SendConnector,
    certificate_name_parts,
)
from remediate.core.last_error import parse_last_error
from remediate.diagnose.probe import ProbeResult, Verdict, compatible_mechanisms


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"

    @property
    def mark(self) -> str:
        return {"ok": "[ok]  ", "warn": "[warn]", "fail": "[FAIL]"}[self.value]


@dataclass(frozen=True)
class Finding:
    status: Status
    topic: str
    text: str

    def line(self) -> str:
        return f"{self.status.mark} {self.topic}: {self.text}"


CREDENTIAL_UNREADABLE = (
    "Exchange never returns the relay user name or password, only that a credential is set"
)


def _ok(topic: str, text: str) -> Finding:
    return Finding(Status.OK, topic, text)


def _warn(topic: str, text: str) -> Finding:
    return Finding(Status.WARN, topic, text)


def _fail(topic: str, text: str) -> Finding:
    return Finding(Status.FAIL, topic, text)


def configuration(connector: SendConnector) -> list[Finding]:
    """Mechanism vs smart hosts and DNS routing, credential, TLS, ForceHELO, pre-flight."""

    c = connector
    mech = c.smart_host_auth_mechanism
    found: list[Finding] = []
    if not c.enabled:
        found.append(_warn("enabled", "the connector is disabled: nothing is sent through it"))
    if c.dns_routing_enabled:
        if mech is not AuthMechanism.NONE:
            found.append(_fail("routing", f"{mech} needs smart hosts, but DNS routing is on"))
        else:
            found.append(_warn("routing", "DNS routing: no smart host, nothing to authenticate"))
    elif not c.smart_hosts:
        found.append(_fail("routing", "DNS routing is off but no smart host is set"))
    else:
        hosts = ", ".join(c.smart_hosts)
        found.append(_ok("routing", f"smart host {hosts} on port {c.port}, mechanism {mech}"))
    if mech.needs_credential:
        if c.credential is CredentialState.SET:
            found.append(_ok("credential", f"set ({CREDENTIAL_UNREADABLE})"))
        elif c.credential is CredentialState.UNKNOWN:
            found.append(_warn("credential", "whether one is set was not reported by Exchange"))
        else:
            found.append(
                _fail("credential", f"{mech} needs a credential and none is stored (wiped?)")
            )
    elif c.credential is CredentialState.SET:
        found.append(_warn("credential", f"a credential is stored but {mech} ignores it"))
    found += _tls(c)
    for problem in preflight.problems(c):
        if problem.rule not in _ALREADY_SAID:
            found.append(_fail("pre-flight", problem.message))
    return found


# Pre-flight rules the checks above already report in their own words.
_ALREADY_SAID = {"credential-not-set", "mechanism-needs-smart-hosts", "smart-host-not-set"}


def _tls(c: SendConnector) -> list[Finding]:
    mech = c.smart_host_auth_mechanism
    found: list[Finding] = []
    if c.ignore_starttls and (c.require_tls or mech is AuthMechanism.BASIC_AUTH_REQUIRE_TLS):
        found.append(_fail("TLS", "IgnoreSTARTTLS is on, but the settings need STARTTLS"))
    elif c.require_tls:
        level = c.tls_auth_level or "EncryptionOnly"
        found.append(_ok("TLS", f"RequireTLS on ({level})"))
    else:
        found.append(_ok("TLS", "RequireTLS off (STARTTLS used when offered)"))
    if c.force_helo and mech.needs_credential:
        found.append(_fail("ForceHELO", "ForceHELO is on: HELO has no AUTH, so no login"))
    return found


def certificate(
    connector: SendConnector, certificates: Sequence[ExchangeCertificate]
) -> list[Finding]:
    """TlsCertificateName must name a certificate enabled for SMTP on every source server
    (exchange-notes.md; otherwise the queue shows ``454 4.7.5 The certificate specified in
    TlsCertificateName of the SendConnector could not be found``)."""
    name = connector.tls_certificate_name
    if not name:
        return []
    parts = certificate_name_parts(name)
    if parts is None:
        return [_fail("certificate", f"TlsCertificateName {name!r} is not <I>issuer<S>subject")]
    issuer, subject = parts
    servers = connector.source_transport_servers or ("",)
    found = []
    for server in servers:
        named = [
            c
            for c in certificates
            if c.server.lower() == server.lower()
            and c.issuer.lower() == issuer.lower()
            and c.subject.lower() == subject.lower()
        ]
        where = f"on {server}" if server else "on the session's server"
        if any(c.smtp_enabled for c in named):
            found.append(_ok("certificate", f"{subject} is enabled for SMTP {where}"))
        elif named:
            found.append(
                _fail(
                    "certificate",
                    f"{subject} is {where} but not enabled for SMTP "
                    "(Enable-ExchangeCertificate -Services SMTP)",
                )
            )
        else:
            found.append(_fail("certificate", f"TlsCertificateName names no certificate {where}"))
    return found


def smart_host(result: ProbeResult, connector: SendConnector | None = None) -> list[Finding]:
    """What the smart host offered to this machine, and whether the connector's mechanism
    fits it."""
    where = f"{result.host}:{result.port}"
    if not result.connected:
        return [_fail("SMTP probe", f"{where}: {result.error}")]
    found = [_ok("SMTP probe", f"{where} answered: {result.banner or 'no banner'}")]
    if not result.ehlo_ok:
        found.append(_fail("EHLO", result.error or "EHLO was refused"))
        return found
    if result.starttls_offered:
        found.append(_starttls(result))
    else:
        found.append(_warn("STARTTLS", "not offered on this port"))
    if result.certificate is not None:
        found += _certificate(result)
    offered = " ".join(result.auth_mechanisms) or "none"
    status = Status.OK if result.offers_login else Status.WARN
    found.append(Finding(status, "AUTH", f"mechanisms offered: {offered}"))
    if connector is not None:
        found.append(_fit(connector.smart_host_auth_mechanism, compatible_mechanisms(result)))
    return found


def _starttls(result: ProbeResult) -> Finding:
    if result.tls_ok:
        return _ok("STARTTLS", f"offered, handshake works ({result.tls_version})")
    return _fail("STARTTLS", f"offered, but {result.tls_error}")


def _certificate(result: ProbeResult) -> list[Finding]:
    cert = result.certificate
    assert cert is not None
    names = ", ".join(cert.names) or "no names"
    found = [
        _ok("certificate", f"names {result.host} ({names})")
        if cert.matches_host
        else _fail("certificate", f"names {names}, not {result.host}")
    ]
    if cert.trusted:
        found.append(_ok("certificate trust", "chain trusted on this machine"))
    else:
        found.append(
            _warn(
                "certificate trust",
                f"not trusted on this machine ({cert.trust_error}); the transport server "
                "may trust it",
            )
        )
    return found


def _fit(mechanism: AuthMechanism, verdicts: Sequence[Verdict]) -> Finding:
    for verdict in verdicts:
        if verdict.mechanism is mechanism:
            status = Status.OK if verdict.works else Status.FAIL
            return Finding(status, "mechanism", f"{mechanism}: {verdict.reason}")
    return _warn("mechanism", f"{mechanism} cannot be judged from the probe")


def reachability(result: ProbeResult) -> Finding:
    """The documented ping/pathping check, done as a TCP and SMTP check with timing."""
    where = f"{result.host}:{result.port}"
    if not result.connected:
        return _fail("reachability", f"{where} not reachable from this machine: {result.error}")
    timing = f"TCP connect {result.connect_ms:.0f} ms"
    if result.total_ms is not None:
        timing += f", SMTP conversation {result.total_ms:.0f} ms"
    return _ok("reachability", f"{where} reachable from this machine ({timing})")


def recommended(result: ProbeResult) -> list[Verdict]:
    """Mechanisms that work first, the strongest first, then those that do not."""
    order = [
        AuthMechanism.BASIC_AUTH_REQUIRE_TLS,
        AuthMechanism.BASIC_AUTH,
        AuthMechanism.EXTERNAL_AUTHORITATIVE,
        AuthMechanism.NONE,
        AuthMechanism.EXCHANGE_SERVER,
    ]
    verdicts = {v.mechanism: v for v in compatible_mechanisms(result)}
    return sorted(
        (verdicts[m] for m in order), key=lambda v: (not v.works, order.index(v.mechanism))
    )


@dataclass(frozen=True)
class LastErrorExplanation:
    summary: str
    action: str
    raw: str


def explain_last_error(text: str | None) -> LastErrorExplanation | None:
    """A queue's LastError in one sentence and what to do (basic; see remediate.core.last_error)."""

    parsed = parse_last_error(text)
    if parsed is None:
        return None
    return LastErrorExplanation(parsed.summary, parsed.action, parsed.raw)


def checklist(findings: Sequence[Finding]) -> list[str]:
    return [finding.line() for finding in findings]
