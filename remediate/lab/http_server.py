"""The lab's HTTP(S) server: threaded, Basic authentication, optional TLS, fault injection.

Only ``POST /PowerShell`` (any case, any query string, as IIS serves Exchange) reaches the
WSMan endpoint; other paths get 404. Credentials are compared in constant time and never
logged: the server writes no access log at all.
"""

from __future__ import annotations

import base64
import hmac
import socket
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from remediate.lab import wsman
from remediate.lab.endpoint import Endpoint
from remediate.lab.faults import FaultAction, FaultInjector

PATH = "/PowerShell"
_SOAP = "application/soap+xml;charset=UTF-8"
_MAX_BODY = 4 * 1024 * 1024


class LabHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        endpoint: Endpoint,
        *,
        username: str,
        password: str,
        faults: FaultInjector,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)
        self.endpoint = endpoint
        self.faults = faults
        self.tls = tls
        self._expected = _basic_token(username, password)

    def get_request(self) -> tuple[socket.socket, object]:
        sock, addr = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def finish_request(self, request: socket.socket, client_address: object) -> None:
        """Runs on the request's thread: the TLS handshake happens here, not in the accept
        loop, so one slow or failing client never blocks the others."""
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(10)
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError):
                return
            request.settimeout(None)
        super().finish_request(request, client_address)

    def authorized(self, header: str | None) -> bool:
        if not header or not header.lower().startswith("basic "):
            return False
        token = header[6:].strip().encode("ascii", "replace")
        return hmac.compare_digest(token, self._expected)


def _basic_token(username: str, password: str) -> bytes:
    return base64.b64encode(f"{username}:{password}".encode())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""
    server: LabHTTPServer

    def log_message(self, format: str, *args: object) -> None:
        """No access log: requests carry credentials in their headers."""

    def handle(self) -> None:
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError):
            self.close_connection = True  # a client gone or a failed TLS handshake

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        action = self.server.faults.next_request()
        if action is FaultAction.DROP:
            self._drop()
            return
        if action is FaultAction.HTTP_500:
            self._send(500, b"", "text/html")
            return
        if urlsplit(self.path).path.rstrip("/").lower() != PATH.lower():
            self._send(404, b"", "text/html")
            return
        if action is FaultAction.REFUSE_AUTH or not self.server.authorized(
            self.headers.get("Authorization")
        ):
            self._send(401, b"", "text/html", {"WWW-Authenticate": 'Basic realm="WSMAN"'})
            return
        endpoint = self.server.endpoint
        if action is FaultAction.WSMAN_FAULT:
            reply = endpoint.fault(_try_parse(body), wsman.quota_exceeded())
        else:
            reply = endpoint.handle(body, self.client_address[0])
        self._send(reply.status, reply.body, _SOAP)

    def do_GET(self) -> None:
        status = 405 if urlsplit(self.path).path.rstrip("/").lower() == PATH.lower() else 404
        self._send(status, b"", "text/html")

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0 or length > _MAX_BODY:
            self.close_connection = True
            self._send(413 if length > _MAX_BODY else 400, b"", "text/html")
            return None
        return self.rfile.read(length)

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _try_parse(body: bytes) -> wsman.Request | None:
    try:
        return wsman.parse_request(body)
    except wsman.WSManFault:
        return None
