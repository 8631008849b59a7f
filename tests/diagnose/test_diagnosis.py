"""The diagnosis checklist from a connector, a probe result and a queue's LastError."""

from __future__ import annotations

from remediate.core.exchange import AuthMechanism, CredentialState, SendConnector
from remediate.diagnose.checks import (
    Status,
    checklist,
    configuration,
    explain_last_error,
    reachability,
    recommended,
    smart_host,
)
from remediate.diagnose.probe import Certificate, ProbeResult

RELAY = SendConnector(
    name="Outbound to Relay",
    smart_hosts=("smtp.relay.example",),
    dns_routing_enabled=False,
    smart_host_auth_mechanism=AuthMechanism.BASIC_AUTH_REQUIRE_TLS,
    credential=CredentialState.SET,
    port=587,
)


def _status(findings, topic: str) -> Status:
    return next(f.status for f in findings if f.topic == topic)


def _good_probe(**changes: object) -> ProbeResult:
    values: dict[str, object] = {
        "host": "smtp.relay.example",
        "port": 587,
        "connected": True,
        "connect_ms": 3.0,
        "total_ms": 12.0,
        "banner": "220 smtp.relay.example ESMTP",
        "ehlo_ok": True,
        "starttls_offered": True,
        "tls_ok": True,
        "tls_version": "TLSv1.3",
        "certificate": Certificate("CN=smtp.relay.example", ("smtp.relay.example",), True, True),
        "auth_after_tls": ("LOGIN",),
    }
    values.update(changes)
    return ProbeResult(**values)  # type: ignore[arg-type]


def test_a_healthy_connector_is_all_ok() -> None:
    findings = configuration(RELAY)
    assert {f.status for f in findings} == {Status.OK}
    assert _status(findings, "credential") is Status.OK


def test_missing_credential_fails_once_in_plain_words() -> None:
    findings = configuration(RELAY.replace(credential=CredentialState.NOT_SET))
    failing = [f for f in findings if f.status is Status.FAIL]
    assert len(failing) == 1 and failing[0].topic == "credential"
    assert "none is stored" in failing[0].text


def test_mechanism_on_a_dns_routed_connector_fails() -> None:
    findings = configuration(RELAY.replace(dns_routing_enabled=True))
    assert _status(findings, "routing") is Status.FAIL


def test_force_helo_and_ignore_starttls_fail_with_basic_auth_require_tls() -> None:
    findings = configuration(RELAY.replace(force_helo=True, ignore_starttls=True))
    assert _status(findings, "ForceHELO") is Status.FAIL
    assert _status(findings, "TLS") is Status.FAIL


def test_disabled_connector_warns_and_preflight_problems_are_listed() -> None:
    broken = RELAY.replace(enabled=False, require_tls=False, tls_domain="relay.example")
    findings = configuration(broken)
    assert _status(findings, "enabled") is Status.WARN
    assert any(f.topic == "pre-flight" and "TlsDomain" in f.text for f in findings), findings


def test_probe_findings_judge_the_current_mechanism() -> None:
    findings = smart_host(_good_probe(), RELAY)
    assert _status(findings, "mechanism") is Status.OK
    no_tls = smart_host(
        _good_probe(
            starttls_offered=False,
            tls_ok=None,
            certificate=None,
            auth_after_tls=(),
            auth_before_tls=("LOGIN",),
        ),
        RELAY,
    )
    assert _status(no_tls, "STARTTLS") is Status.WARN
    assert _status(no_tls, "mechanism") is Status.FAIL


def test_certificate_naming_another_host_and_untrusted_chain() -> None:
    cert = Certificate(
        "CN=mail.other.example", ("mail.other.example",), False, False, "self signed"
    )
    findings = smart_host(_good_probe(certificate=cert), RELAY)
    assert _status(findings, "certificate") is Status.FAIL
    assert _status(findings, "certificate trust") is Status.WARN
    assert _status(findings, "mechanism") is Status.FAIL


def test_unreachable_smart_host() -> None:
    down = ProbeResult("smtp.relay.example", 587, error="connection refused")
    assert [f.status for f in smart_host(down, RELAY)] == [Status.FAIL]
    finding = reachability(down)
    assert finding.status is Status.FAIL and "not reachable from this machine" in finding.text
    up = reachability(_good_probe())
    assert up.status is Status.OK and "TCP connect 3 ms" in up.text


def test_recommendation_puts_working_mechanisms_first() -> None:
    ranked = recommended(_good_probe())
    assert ranked[0].mechanism is AuthMechanism.BASIC_AUTH_REQUIRE_TLS and ranked[0].works
    no_tls = recommended(
        _good_probe(
            starttls_offered=False,
            tls_ok=None,
            certificate=None,
            auth_after_tls=(),
            auth_before_tls=("LOGIN",),
        )
    )
    assert no_tls[0].mechanism is AuthMechanism.BASIC_AUTH
    assert [v.works for v in no_tls] == sorted((v.works for v in no_tls), reverse=True)


def test_last_error_is_explained() -> None:
    explained = explain_last_error(
        '451 4.4.0 Primary target IP address responded with: "454 4.7.0 Temporary '
        'authentication failure." Attempted failover to alternate host, but that did not succeed.'
    )
    assert explained is not None and "2016" in explained.summary
    assert explain_last_error(None) is None


def test_checklist_lines_carry_the_mark() -> None:
    lines = checklist(configuration(RELAY.replace(credential=CredentialState.NOT_SET)))
    assert any(line.startswith("[FAIL] credential:") for line in lines)
    assert any(line.startswith("[ok]") for line in lines)


def test_tls_certificate_name_must_name_an_smtp_certificate_on_every_source_server() -> None:
    """exchange-notes.md: TlsCertificateName must name a certificate enabled for SMTP."""
    from remediate.core.exchange import ExchangeCertificate
    from remediate.diagnose.checks import certificate

    named = RELAY.replace(
        tls_certificate_name="<I>CN=Contoso CA<S>CN=mail.contoso.com",
        source_transport_servers=("EX01", "EX02"),
    )
    certs = [
        ExchangeCertificate("EX01", "AA", "CN=mail.contoso.com", "CN=Contoso CA", "IIS, SMTP"),
        ExchangeCertificate("EX02", "BB", "CN=mail.contoso.com", "CN=Contoso CA", "IMAP, POP"),
    ]
    ex01, ex02 = certificate(named, certs)
    assert ex01.status is Status.OK and "EX01" in ex01.text
    assert ex02.status is Status.FAIL and "not enabled for SMTP" in ex02.text
    (missing, _) = certificate(named, [])
    assert missing.status is Status.FAIL and "names no certificate on EX01" in missing.text
    assert certificate(RELAY, certs) == []
