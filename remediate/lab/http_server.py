"""The lab's HTTP(S) server: threaded, IIS-like login (``auth``), optional TLS, faults.

Only ``POST /PowerShell`` (any case, any query string, as IIS serves Exchange) reaches the
WSMan endpoint, and ``POST /wsman`` the server's default WinRM endpoint when the lab serves
it; other paths get 404. It is a network service that tests hammer, so:

- framing first: a duplicate or non-numeric Content-Length, or any Transfer-Encoding, is
  refused (400/411) and the connection closed (RFC 9112 section 6.3: ambiguous framing);
- the login is checked on the headers, before the body is read; a body over the cap is
  refused with 413 unread; an unauthenticated body is read only to be discarded, in chunks;
- an idle connection is closed after ``IDLE_TIMEOUT`` (IIS's default connectionTimeout,
  120 s); once a client has logged in with NTLM/Kerberos on it, after
  ``LOGGED_IN_IDLE_TIMEOUT``, because its message encryption is bound to that connection and a
  person may sit at a prompt between two steps of one session; the listen backlog is 128;
- each reply goes out in one write, with TCP_NODELAY (no Nagle/delayed-ACK stall).

Credentials are compared in constant time and never logged: there is no access log at all.
"""

from __future__ import annotations

import socket
import ssl
import time
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from remediate.lab import wsman
from remediate.lab.auth import AuthConfig, ConnectionLogin
from remediate.lab.endpoint import Endpoint
from remediate.lab.faults import FaultAction, FaultInjector
from remediate.lab.winrm_crypt import EncryptionError

PATH = "/PowerShell"
WINRM_PATH = "/wsman"
_SOAP = "application/soap+xml;charset=UTF-8"
MAX_BODY = 4 * 1024 * 1024
IDLE_TIMEOUT = 120.0
LOGGED_IN_IDLE_TIMEOUT = 3600.0
BACKLOG = 128
_CHUNK = 64 * 1024


class LabHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = BACKLOG

    def __init__(
        self,
        address: tuple[str, int],
        endpoint: Endpoint,
        *,
        auth: AuthConfig,
        faults: FaultInjector,
        tls: ssl.SSLContext | None = None,
        idle_timeout: float | None = None,
        winrm: Endpoint | None = None,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)
        self.endpoint = endpoint
        self.winrm = winrm
        self.faults = faults
        self.tls = tls
        self.auth = auth
        self.idle_timeout = idle_timeout or IDLE_TIMEOUT

    def endpoint_for(self, path: str) -> Endpoint | None:
        """The endpoint a request path reaches, or None (404)."""
        wanted = urlsplit(path).path.rstrip("/").lower()
        if wanted == PATH.lower():
            return self.endpoint
        if wanted == WINRM_PATH and self.winrm is not None:
            return self.winrm
        return None

    def get_request(self) -> tuple[socket.socket, object]:
        sock, addr = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def finish_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        """Runs on the request's thread: the TLS handshake happens here, not in the accept
        loop, so one slow or failing client never blocks the others."""
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(10)
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


class _Framing(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""
    disable_nagle_algorithm = True
    server: LabHTTPServer

    def setup(self) -> None:
        # StreamRequestHandler.setup() reads self.timeout, so one per connection works;
        # typeshed declares it a ClassVar only
        self.timeout = self.server.idle_timeout  # type: ignore[misc]
        super().setup()
        self.login = ConnectionLogin(self.server.auth)

    def log_message(self, format: str, *args: object) -> None:
        """No access log: requests carry credentials in their headers."""

    def handle(self) -> None:
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError):
            self.close_connection = True  # a client gone or a failed TLS handshake

    def do_POST(self) -> None:
        try:
            length = self._content_length()
        except _Framing as refused:
            self._refuse(refused.status)
            return
        action = self.server.faults.next_request()
        if action is FaultAction.DROP:
            self._drop()
            return
        if action is FaultAction.HTTP_500:
            self._refuse(500, length)
            return
        endpoint = self.server.endpoint_for(self.path)
        if endpoint is None:
            self._refuse(404, length)
            return
        if length > MAX_BODY:
            self._refuse(413)
            return
        if action is FaultAction.REFUSE_AUTH:
            self.login.reset()
            self._refuse(401, length, self.server.auth.offers())
            return
        was_logged_in = self.login.authenticated
        outcome = self.login.check(self.headers.get("Authorization"))
        if not outcome.authorized:
            self._refuse(401, length, outcome.headers)
            return
        if self.login.authenticated and not was_logged_in:
            self.connection.settimeout(LOGGED_IN_IDLE_TIMEOUT)
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            return
        self._answer(endpoint, body, action, outcome.headers)

    def _answer(
        self, endpoint: Endpoint, body: bytes, action: FaultAction, headers: dict[str, str]
    ) -> None:
        encrypted = self.server.auth.mode.uses_tokens and self.server.tls is None
        if not body and encrypted:
            # The empty POST a WinRM client sends to log in before encrypting (MS-WSMV 3.1.4.1.30)
            self._send(200, b"", None, headers)
            return
        if encrypted:
            try:
                body = self.login.unwrap(body, self.headers.get("Content-Type"))
            except EncryptionError:
                # WinRM refuses an unencrypted or undecryptable body with HTTP 400.
                self._send(400, b"", "text/html", headers)
                return
        if action is FaultAction.WSMAN_FAULT:
            reply = endpoint.fault(_try_parse(body), wsman.quota_exceeded())
        else:
            reply = endpoint.handle(body, self.client_address[0])
        content_type, data = _SOAP, reply.body
        if encrypted:
            content_type, data = self.login.wrap(reply.body)
        self._send(reply.status, data, content_type, headers)

    def do_GET(self) -> None:
        try:
            length = self._content_length()
        except _Framing as refused:
            self._refuse(refused.status)
            return
        status = 405 if self.server.endpoint_for(self.path) is not None else 404
        self._refuse(status, length)

    def _content_length(self) -> int:
        """The body's length; ambiguous or unsupported framing raises ``_Framing``."""
        if self.headers.get_all("Transfer-Encoding"):
            # The lab (like WinRM clients) uses Content-Length only; with both, the framing
            # is ambiguous (a request-smuggling vector).
            raise _Framing(400 if self.headers.get_all("Content-Length") else 411)
        values = self.headers.get_all("Content-Length") or []
        if not values:
            return 0
        if len(values) > 1 or not values[0].strip().isdigit() or not values[0].isascii():
            raise _Framing(400)
        return int(values[0].strip())

    def _refuse(self, status: int, length: int = -1, headers: dict[str, str] | None = None) -> None:
        """An answer without reading the body first. Then a body within the cap is drained in
        chunks (never kept) so the connection, and a connection-based login in progress,
        survives; without a known length the connection closes."""
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
        self._send(status, b"", "text/html", headers)
        if not self.close_connection and length:
            self._discard(length)

    def _discard(self, length: int) -> None:
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(_CHUNK, remaining))
            if not chunk:
                self.close_connection = True
                return
            remaining -= len(chunk)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The status line, headers and body in one write."""
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        lines = [
            f"HTTP/1.1 {status} {reason}",
            f"Server: {self.server_version}",
            f"Date: {_http_date()}",
            f"Content-Length: {len(body)}",
        ]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + body)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


_date: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The Date header (RFC 9110 IMF-fixdate, whole seconds), formatted once a second."""
    global _date
    second = int(time.time())
    if _date[0] != second:
        _date = (second, formatdate(second, usegmt=True))
    return _date[1]


def _try_parse(body: bytes) -> wsman.Request | None:
    try:
        return wsman.parse_request(body)
    except wsman.WSManFault:
        return None
