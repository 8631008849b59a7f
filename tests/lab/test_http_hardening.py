"""The lab as a network service (issue 13, item 14): raw sockets against its HTTP layer.

Framing is refused when ambiguous (RFC 9112 section 6.3: duplicate Content-Length, or
Transfer-Encoding with Content-Length), the login is judged on the headers before any body
is buffered, bodies are capped, idle connections end, the backlog is large, and each reply
goes out in one write.
"""

from __future__ import annotations

import base64
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from remediate.lab import http_server
from remediate.lab.server import Lab
from tests.lab.lab_helpers import start_lab


@pytest.fixture
def basic_lab(tmp_path: Path) -> Iterator[Lab]:
    lab = start_lab(tmp_path, auth="basic")
    try:
        yield lab
    finally:
        lab.stop()


def _auth(lab: Lab) -> str:
    token = base64.b64encode(f"{lab.admin_user}:{lab.admin_password}".encode()).decode()
    return f"Authorization: Basic {token}\r\n"


def _exchange(lab: Lab, raw: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection((lab.host, lab.port), timeout=timeout) as sock:
        sock.sendall(raw)
        return _read_reply(sock)


def _read_reply(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
         if line.lower().startswith(b"content-length:")),
        0,
    )  # fmt: skip
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _status(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def _post(headers: str, body: bytes = b"") -> bytes:
    return f"POST /PowerShell HTTP/1.1\r\nHost: lab\r\n{headers}\r\n".encode() + body


def test_duplicate_content_length_is_refused(basic_lab: Lab) -> None:
    headers = _auth(basic_lab) + "Content-Length: 4\r\nContent-Length: 40\r\n"
    reply = _exchange(basic_lab, _post(headers, b"abcd"))
    assert _status(reply) == 400
    assert b"connection: close" in reply.lower()


def test_transfer_encoding_with_content_length_is_refused(basic_lab: Lab) -> None:
    headers = _auth(basic_lab) + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n"
    assert _status(_exchange(basic_lab, _post(headers, b"0\r\n\r\n"))) == 400


def test_chunked_without_length_is_length_required(basic_lab: Lab) -> None:
    headers = _auth(basic_lab) + "Transfer-Encoding: chunked\r\n"
    assert _status(_exchange(basic_lab, _post(headers, b"0\r\n\r\n"))) == 411


@pytest.mark.parametrize("value", ["-1", "4 4", "0x10", "١٢"])
def test_malformed_content_length_is_refused(basic_lab: Lab, value: str) -> None:
    reply = _exchange(basic_lab, _post(_auth(basic_lab) + f"Content-Length: {value}\r\n"))
    assert _status(reply) == 400


def test_oversized_body_is_refused_unread(basic_lab: Lab) -> None:
    size = http_server.MAX_BODY + 1
    reply = _exchange(basic_lab, _post(_auth(basic_lab) + f"Content-Length: {size}\r\n"))
    assert _status(reply) == 413  # answered at once: the lab did not wait for the body


def test_login_is_judged_before_the_body_is_read(basic_lab: Lab) -> None:
    """A 4 MB body promised without credentials gets its 401 before one byte of it is
    sent: the lab does not wait for (or buffer) an unauthenticated body."""
    size = http_server.MAX_BODY
    with socket.create_connection((basic_lab.host, basic_lab.port), timeout=5) as sock:
        sock.sendall(_post(f"Content-Length: {size}\r\n"))
        reply = _read_reply(sock)
    assert _status(reply) == 401
    assert b'WWW-Authenticate: Basic realm="WSMAN"' in reply


def test_many_unauthenticated_big_bodies_do_not_grow_the_lab(basic_lab: Lab) -> None:
    """60 requests of 4 MB each with a wrong password: each is answered 401 and drained in
    chunks, never buffered (issue 13 measured 287 MB before)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    body = b"x" * http_server.MAX_BODY
    bad = "Authorization: Basic " + base64.b64encode(b"administrator@contoso.lab:no").decode()
    for _ in range(60):
        reply = _exchange(basic_lab, _post(bad + f"\r\nContent-Length: {len(body)}\r\n", body))
        assert _status(reply) == 401
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 64 * 1024, f"the lab process grew by {grown_kib} KiB"


@pytest.mark.e2e
def test_idle_connections_are_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_server, "IDLE_TIMEOUT", 0.5)
    lab = Lab(state_file=tmp_path / "s.json", workdir=tmp_path / "w", auth="basic")
    lab.start()
    try:
        with socket.create_connection((lab.host, lab.port), timeout=10) as sock:
            started = time.monotonic()
            assert sock.recv(1) == b""  # the lab closed the idle connection
            assert time.monotonic() - started < 8
    finally:
        lab.stop()


def test_listen_backlog_is_at_least_128(basic_lab: Lab) -> None:
    assert basic_lab._http is not None
    assert basic_lab._http.request_queue_size >= 128
    # 100 connections opened at once, before the lab accepts any: none is reset
    sockets = [socket.create_connection((basic_lab.host, basic_lab.port)) for _ in range(100)]
    try:
        for sock in sockets:
            sock.sendall(_post("Content-Length: 0\r\n"))
        assert all(_status(_read_reply(sock)) == 401 for sock in sockets)
    finally:
        for sock in sockets:
            sock.close()


def test_each_reply_is_one_write(basic_lab: Lab) -> None:
    """The first recv holds the status line, headers and body together (headers and body in
    two writes made Nagle and delayed ACK hold the body back about 40 ms, issue 15)."""
    with socket.create_connection((basic_lab.host, basic_lab.port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(f"GET /nothing HTTP/1.1\r\nHost: lab\r\n{_auth(basic_lab)}\r\n".encode())
        first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 404") and first.endswith(b"\r\n\r\n")
    soap = _post(_auth(basic_lab) + "Content-Length: 5\r\n", b"<bad>")
    with socket.create_connection((basic_lab.host, basic_lab.port), timeout=5) as sock:
        sock.sendall(soap)
        first = sock.recv(65536)
    head, _, body = first.partition(b"\r\n\r\n")
    [length_line] = [v for v in head.split(b"\r\n") if v.startswith(b"Content-Length")]
    length = int(length_line.split(b":")[1])
    assert length > 0 and len(body) == length  # a WSMan fault, whole in the first segment
