"""The SMTP probe against real aiosmtpd smart hosts on loopback (the lab's SmartHost)."""

from __future__ import annotations

import gc
import socket
import threading
from pathlib import Path

import pytest

from remediate.core.exchange import AuthMechanism
from remediate.diagnose.probe import compatible_mechanisms, name_matches, probe
from remediate.lab.certs import LabCA
from remediate.lab.smarthost import SmartHost


@pytest.fixture(scope="module")
def ca() -> LabCA:
    return LabCA.create()


@pytest.fixture(scope="module")
def ca_file(ca: LabCA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ca.write_ca_pem(tmp_path_factory.mktemp("ca") / "ca.pem")


def _host(ca: LabCA, **kw: object) -> SmartHost:
    return SmartHost(ca=ca, relay_user="relay@contoso.lab", relay_password="pw-Secret1", **kw)


def _works(result) -> dict[AuthMechanism, bool]:
    return {v.mechanism: v.works for v in compatible_mechanisms(result)}


def test_starttls_and_auth_login_trusted_certificate(ca: LabCA, ca_file: Path) -> None:
    with _host(ca) as host:
        result = probe("127.0.0.1", host.port, ca_file=ca_file)
    assert result.connected and result.ehlo_ok and result.error is None
    assert result.banner and result.banner.startswith("220")
    assert result.starttls_offered and result.tls_ok
    assert result.auth_before_tls == ()  # the lab relay offers AUTH only after STARTTLS
    assert result.auth_after_tls == ("LOGIN",)
    assert result.certificate is not None
    assert result.certificate.matches_host and result.certificate.trusted
    assert "127.0.0.1" in result.certificate.names
    works = _works(result)
    assert works[AuthMechanism.BASIC_AUTH] and works[AuthMechanism.BASIC_AUTH_REQUIRE_TLS]
    assert not works[AuthMechanism.EXTERNAL_AUTHORITATIVE]
    assert not works[AuthMechanism.NONE]


def test_untrusted_chain_still_checks_the_name(ca: LabCA) -> None:
    with _host(ca) as host:
        result = probe("127.0.0.1", host.port)  # no CA file: the lab CA is not trusted
    assert result.tls_ok and result.certificate is not None
    assert not result.certificate.trusted and result.certificate.trust_error
    assert result.certificate.matches_host
    assert result.auth_after_tls == ("LOGIN",)


def test_certificate_that_does_not_name_the_host(ca: LabCA, ca_file: Path) -> None:
    with _host(ca, cert_names=["mail.other.example"]) as host:
        result = probe("127.0.0.1", host.port, ca_file=ca_file)
    assert result.tls_ok and result.certificate is not None
    assert result.certificate.names == ("mail.other.example",)
    assert not result.certificate.matches_host and result.certificate.trusted
    verdicts = {v.mechanism: v for v in compatible_mechanisms(result)}
    tls = verdicts[AuthMechanism.BASIC_AUTH_REQUIRE_TLS]
    assert not tls.works and "mail.other.example" in tls.reason
    assert verdicts[AuthMechanism.BASIC_AUTH].works


def test_without_starttls(ca: LabCA) -> None:
    with _host(ca, starttls=False) as host:
        result = probe("127.0.0.1", host.port)
    assert result.ehlo_ok and not result.starttls_offered
    assert result.tls_ok is None and result.certificate is None
    assert result.auth_before_tls == ("LOGIN",)
    verdicts = {v.mechanism: v for v in compatible_mechanisms(result)}
    assert not verdicts[AuthMechanism.BASIC_AUTH_REQUIRE_TLS].works
    assert "STARTTLS" in verdicts[AuthMechanism.BASIC_AUTH_REQUIRE_TLS].reason
    assert verdicts[AuthMechanism.BASIC_AUTH].works


def test_without_auth_login(ca: LabCA, ca_file: Path) -> None:
    with _host(ca, auth=False) as host:
        result = probe("127.0.0.1", host.port, ca_file=ca_file)
    assert result.tls_ok and result.auth_after_tls == ()
    works = _works(result)
    assert not works[AuthMechanism.BASIC_AUTH]
    assert not works[AuthMechanism.BASIC_AUTH_REQUIRE_TLS]
    assert works[AuthMechanism.EXTERNAL_AUTHORITATIVE] and works[AuthMechanism.NONE]


def test_without_starttls_or_auth(ca: LabCA) -> None:
    with _host(ca, starttls=False, auth=False) as host:
        result = probe("127.0.0.1", host.port)
    assert not result.starttls_offered and result.auth_mechanisms == ()
    assert not _works(result)[AuthMechanism.BASIC_AUTH]


def test_closed_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = probe("127.0.0.1", port, timeout=2)
    assert not result.connected and result.connect_ms is None
    assert result.error is not None and "refused" in result.error
    assert not any(v.works for v in compatible_mechanisms(result))


@pytest.mark.parametrize("server", ["closes at once", "never greets"])
def test_a_connection_without_a_greeting_is_closed(server: str) -> None:
    """The probe connects, but the server closes before its 220 or sends none in time: the
    result says which (smtplib reports the silence as a closed connection "timed out"), and
    the probe's socket is closed (a leaked one would warn, an error under this suite)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        accepted: list[socket.socket] = []

        def serve() -> None:
            conn, _ = listener.accept()
            if server == "closes at once":
                conn.close()
            else:
                accepted.append(conn)  # held open, silent, until the probe gives up

        thread = threading.Thread(target=serve)
        thread.start()
        result = probe("127.0.0.1", port, timeout=1)
        thread.join(10)
        for conn in accepted:
            conn.close()
    assert not result.connected and result.error is not None
    expected = "closed the connection" if server == "closes at once" else "no answer"
    assert expected in result.error
    gc.collect()  # a socket left open would warn here, inside the test


@pytest.mark.parametrize(
    ("host", "names", "expected"),
    [
        ("smtp.relay.example", ("smtp.relay.example",), True),
        ("SMTP.Relay.Example.", ("smtp.relay.example",), True),
        ("smtp.relay.example", ("*.relay.example",), True),
        ("a.smtp.relay.example", ("*.relay.example",), False),
        ("10.0.0.5", ("smtp.relay.example",), False),
        ("127.0.0.1", ("localhost", "127.0.0.1"), True),
        ("relay", ("relay.example",), False),
    ],
)
def test_name_matches(host: str, names: tuple[str, ...], expected: bool) -> None:
    assert name_matches(host, names) is expected
