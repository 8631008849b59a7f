"""The lab's login and message encryption at the HTTP level, driven by hand over one TCP
connection (http.client) with pyspnego as the client: what IIS/WinRM does for Exchange
(shared/exchange-notes.md "Authentication on /PowerShell", MS-WSMV 2.2.9.1)."""

from __future__ import annotations

import base64
import http.client
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
import spnego

from remediate.lab import winrm_crypt
from remediate.lab.server import Lab
from tests.lab.lab_helpers import start_lab

IDENTIFY = (
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/><s:Body/>'
    b"</s:Envelope>"
)


_OPEN: list[http.client.HTTPConnection] = []


@pytest.fixture(autouse=True)
def _close_connections() -> Iterator[None]:
    """Every connection a test opened is closed after it (the lab's sockets are not left to
    the garbage collector)."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def _connect(lab: Lab) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection(lab.host, lab.port, timeout=10)
    _OPEN.append(conn)
    return conn


@pytest.fixture
def ntlm_lab(tmp_path: Path) -> Iterator[Lab]:
    lab = start_lab(tmp_path, auth="ntlm")
    try:
        yield lab
    finally:
        lab.stop()


def _login(lab: Lab, user: str | None = None) -> tuple[http.client.HTTPConnection, object]:
    """The NTLM handshake on the empty POST, as WinRM clients do; the connection and the
    client context afterwards."""
    conn = _connect(lab)
    context = spnego.client(
        user or lab.admin_user, lab.admin_password, protocol="ntlm",
        options=spnego.NegotiateOptions.wrapping_winrm,
    )  # fmt: skip
    conn.request("POST", "/PowerShell", body=b"")
    first = conn.getresponse()
    first.read()
    assert first.status == 401 and first.getheader("WWW-Authenticate") == "Negotiate"
    token = context.step()
    while True:
        headers = {"Authorization": "Negotiate " + base64.b64encode(token).decode()}
        conn.request("POST", "/PowerShell", body=b"", headers=headers)
        reply = conn.getresponse()
        reply.read()
        if reply.status != 401:
            break
        challenge = reply.getheader("WWW-Authenticate", "").split(" ", 1)[1]
        token = context.step(base64.b64decode(challenge))
    assert reply.status == 200, reply.status
    return conn, context


def _post(
    conn: http.client.HTTPConnection, body: bytes, content_type: str
) -> tuple[int, bytes, str]:
    conn.request("POST", "/PowerShell", body=body, headers={"Content-Type": content_type})
    reply = conn.getresponse()
    return reply.status, reply.read(), reply.getheader("Content-Type") or ""


def test_first_answer_offers_negotiate_and_basic_is_refused(ntlm_lab: Lab) -> None:
    conn = _connect(ntlm_lab)
    basic = base64.b64encode(f"{ntlm_lab.admin_user}:{ntlm_lab.admin_password}".encode())
    conn.request("POST", "/PowerShell", body=IDENTIFY, headers={"Authorization": b"Basic " + basic})
    reply = conn.getresponse()
    reply.read()
    assert reply.status == 401
    assert reply.getheader("WWW-Authenticate") == "Negotiate"  # Basic over http: not offered


def test_wrong_password_gets_401(ntlm_lab: Lab) -> None:
    context = spnego.client(ntlm_lab.admin_user, "wrong", protocol="ntlm")
    conn = _connect(ntlm_lab)
    headers = {"Authorization": "Negotiate " + base64.b64encode(context.step()).decode()}
    conn.request("POST", "/PowerShell", body=b"", headers=headers)
    reply = conn.getresponse()
    reply.read()
    challenge = reply.getheader("WWW-Authenticate", "").split(" ", 1)[1]
    final = context.step(base64.b64decode(challenge))
    headers = {"Authorization": "Negotiate " + base64.b64encode(final).decode()}
    conn.request("POST", "/PowerShell", body=b"", headers=headers)
    reply = conn.getresponse()
    reply.read()
    assert reply.status == 401 and reply.getheader("WWW-Authenticate") == "Negotiate"


@pytest.mark.parametrize("user_form", ["CONTOSO\\administrator", "administrator"])
def test_ntlm_name_forms(ntlm_lab: Lab, user_form: str) -> None:
    conn, _ = _login(ntlm_lab, user_form)
    conn.close()


def test_plaintext_after_login_is_http_400(ntlm_lab: Lab) -> None:
    conn, _ = _login(ntlm_lab)
    status, body, _ = _post(conn, IDENTIFY, "application/soap+xml;charset=UTF-8")
    assert status == 400 and body == b""


def test_encrypted_request_gets_an_encrypted_reply(ntlm_lab: Lab) -> None:
    conn, context = _login(ntlm_lab)
    body = winrm_crypt.wrap(context, IDENTIFY, winrm_crypt.SPNEGO)
    status, reply, content_type = _post(conn, body, winrm_crypt.content_type(winrm_crypt.SPNEGO))
    assert content_type == winrm_crypt.content_type(winrm_crypt.SPNEGO)
    assert b"Envelope" not in reply
    soap = winrm_crypt.unwrap(context, reply, winrm_crypt.SPNEGO)
    assert status == 500 and b"Fault" in soap  # an empty Body is a WSMan fault, sealed too


def test_exchange_boundary_with_a_space_is_accepted(ntlm_lab: Lab) -> None:
    conn, context = _login(ntlm_lab)
    body = winrm_crypt.wrap(context, IDENTIFY, winrm_crypt.SPNEGO)
    body = body.replace(b"--Encrypted Boundary", b"-- Encrypted Boundary")
    status, reply, _ = _post(conn, body, winrm_crypt.content_type(winrm_crypt.SPNEGO))
    assert status == 500 and winrm_crypt.unwrap(context, reply, winrm_crypt.SPNEGO)


def test_tampered_or_mislabelled_bodies_are_http_400(ntlm_lab: Lab) -> None:
    conn, context = _login(ntlm_lab)
    body = bytearray(winrm_crypt.wrap(context, IDENTIFY, winrm_crypt.SPNEGO))
    body[-40] ^= 1  # one bit of the sealed message
    status, _, _ = _post(conn, bytes(body), winrm_crypt.content_type(winrm_crypt.SPNEGO))
    assert status == 400
    good = winrm_crypt.wrap(context, IDENTIFY, winrm_crypt.SPNEGO)
    status, _, _ = _post(conn, good, winrm_crypt.content_type(winrm_crypt.KERBEROS))
    assert status == 400  # the label must follow the scheme used to log in


@pytest.mark.parametrize(
    "body",
    [
        b"--Encrypted Boundary\r\n",
        b"--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"
        b"\tOriginalContent: type=x;Length=5\r\n--Encrypted Boundary\r\n"
        b"\tContent-Type: application/octet-stream\r\n" + struct.pack("<I", 2**31) + b"x"
        b"--Encrypted Boundary--\r\n",
        b"x" * 10000,
    ],
)
def test_malformed_encrypted_bodies_are_http_400(ntlm_lab: Lab, body: bytes) -> None:
    conn, _ = _login(ntlm_lab)
    status, _, _ = _post(conn, body, winrm_crypt.content_type(winrm_crypt.SPNEGO))
    assert status == 400


def test_a_new_connection_must_log_in_again(ntlm_lab: Lab) -> None:
    """The login belongs to the TCP connection (IIS's connection-based authentication)."""
    conn, context = _login(ntlm_lab)
    conn.close()
    other = _connect(ntlm_lab)
    body = winrm_crypt.wrap(context, IDENTIFY, winrm_crypt.SPNEGO)
    status, _, _ = _post(other, body, winrm_crypt.content_type(winrm_crypt.SPNEGO))
    assert status == 401
