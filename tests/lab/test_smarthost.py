"""The lab smart host (real aiosmtpd) and the lab CA, spoken to with smtplib and ssl."""

from __future__ import annotations

import smtplib
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from remediate.lab.certs import LabCA, certificate_names
from remediate.lab.smarthost import SmartHost
from tests.lab.org_fixtures import free_port, lab_ca_fixture  # noqa: F401 - fixtures

USER, PASSWORD = "relay@contoso.lab", "Relay-Secret-1"


@pytest.fixture
def relay(lab_ca: LabCA) -> Iterator[SmartHost]:
    with SmartHost(("127.0.0.1", 0), ca=lab_ca, relay_user=USER, relay_password=PASSWORD) as host:
        yield host


def connect(host: SmartHost) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", host.port, timeout=10)
    client.ehlo("EX01.contoso.lab")
    return client


def trusted(ca: LabCA) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=ca.ca_pem.decode())


def login(client: smtplib.SMTP, user: str, password: str) -> tuple[int, bytes]:
    client.user, client.password = user, password
    return client.auth("LOGIN", client.auth_login, initial_response_ok=False)


def test_starttls_first_then_auth_login_only(relay: SmartHost, lab_ca: LabCA) -> None:
    with connect(relay) as client:
        assert client.has_extn("starttls") and not client.has_extn("auth")
        client.starttls(context=trusted(lab_ca))  # verifies the chain and 127.0.0.1
        client.ehlo("EX01.contoso.lab")
        assert client.esmtp_features["auth"].split() == ["LOGIN"]
        assert login(client, USER, PASSWORD)[0] == 235
        client.sendmail("a@contoso.lab", ["b@tailspintoys.example"], b"Subject: t\r\n\r\nhi\r\n")
    (message,) = relay.messages
    assert (message.user, message.mail_from, message.rcpt_tos) == (
        USER,
        "a@contoso.lab",
        ["b@tailspintoys.example"],
    )
    assert b"hi" in message.data


def test_certificate_names_localhost_and_the_address(relay: SmartHost, lab_ca: LabCA) -> None:
    with connect(relay) as client:
        client.starttls(context=ssl._create_unverified_context())  # noqa: S323 - read the cert
        der = client.sock.getpeercert(binary_form=True)
    assert certificate_names(der) == {"localhost", "127.0.0.1"}


@pytest.mark.parametrize(("user", "password"), [(USER, "wrong"), ("other@contoso.lab", PASSWORD)])
def test_only_the_relay_account_is_accepted(
    relay: SmartHost, lab_ca: LabCA, user: str, password: str
) -> None:
    with connect(relay) as client:
        client.starttls(context=trusted(lab_ca))
        client.ehlo("EX01.contoso.lab")
        with pytest.raises(smtplib.SMTPAuthenticationError) as caught:
            login(client, user, password)
    assert caught.value.smtp_code == 535


def test_mail_from_needs_auth_and_plain_is_not_offered(relay: SmartHost, lab_ca: LabCA) -> None:
    with connect(relay) as client:
        client.starttls(context=trusted(lab_ca))
        client.ehlo("EX01.contoso.lab")
        assert client.mail("a@contoso.lab")[0] == 530
        code, _ = client.docmd("AUTH", "PLAIN " + "AHJlbGF5AHB3")
        assert code == 504
    assert relay.messages == []


def test_options_switch_off_starttls_and_auth(lab_ca: LabCA) -> None:
    with SmartHost(ca=lab_ca, relay_user=USER, relay_password=PASSWORD, starttls=False) as plain:
        with connect(plain) as client:
            assert not client.has_extn("starttls")
            assert client.esmtp_features["auth"].split() == ["LOGIN"]
            assert login(client, USER, PASSWORD)[0] == 235
    with SmartHost(relay_user=USER, relay_password=PASSWORD, starttls=False, auth=False) as open_:
        with connect(open_) as client:
            assert not client.has_extn("auth")
            client.sendmail("a@contoso.lab", ["b@x.example"], b"Subject: t\r\n\r\nhi\r\n")
        assert [m.user for m in open_.messages] == [None]


def test_starttls_needs_the_ca() -> None:
    with pytest.raises(ValueError, match="CA"):
        SmartHost(relay_user=USER, relay_password=PASSWORD)


def test_ca_writes_a_trust_file_and_issues_server_certificates(
    lab_ca: LabCA, tmp_path: Path
) -> None:
    ca_file = lab_ca.write_ca_pem(tmp_path / "ca.pem")
    cert_file, key_file = tmp_path / "server.pem", tmp_path / "server.key"
    lab_ca.issue_server_cert(["localhost", "127.0.0.1", "::1"], cert_file, key_file)
    assert b"PRIVATE KEY" not in ca_file.read_bytes()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(ca_file))
    assert client.get_ca_certs()[0]["subject"] == ((("commonName", "Contoso Lab Root CA"),),)
    leaf = ssl.PEM_cert_to_DER_cert(
        cert_file.read_text().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    )
    assert certificate_names(leaf) == {"localhost", "127.0.0.1", "::1"}
    with pytest.raises(ValueError):
        lab_ca.issue([])


def test_port_zero_picks_a_free_port(lab_ca: LabCA) -> None:
    port = free_port()
    with SmartHost(("127.0.0.1", port), ca=lab_ca, relay_user=USER, relay_password=PASSWORD) as a:
        assert a.port == port
    with SmartHost(ca=lab_ca, relay_user=USER, relay_password=PASSWORD) as b:
        assert b.port > 0


@pytest.mark.parametrize("after", ["banner", "starttls"])
def test_stop_closes_the_connections_still_open(lab_ca: LabCA, after: str) -> None:
    """A client still connected when the smart host stops sees its connection closed: the
    server closes its sockets itself (aiosmtpd's stop alone left them to the garbage
    collector, whose ResourceWarning then failed whichever test it happened to run in)."""
    host = SmartHost(("127.0.0.1", 0), ca=lab_ca, relay_user=USER, relay_password=PASSWORD)
    host.start()
    client = connect(host)
    if after == "starttls":
        client.starttls(context=trusted(lab_ca))
    sock = client.sock
    assert sock is not None
    host.stop()
    sock.settimeout(10)
    try:
        assert sock.recv(1024) == b""  # end of stream, not a timeout
    except (ssl.SSLError, ConnectionResetError):
        pass  # an aborted TLS stream ends with an error instead: closed all the same
    finally:
        client.close()
