"""An admin's HTTP proxy (HTTP_PROXY in the environment) carries every request of a session:
the shell's first request, where pypsrp reads the environment, and every one after it, when
requests no longer re-reads it (``session._settle_environment``)."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from remediate.lab.server import Lab
from remediate.remote.session import Session
from tests.remote_helpers import lab_connection, lab_fixture  # noqa: F401 - fixtures

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding"}


class _Forwarder(BaseHTTPRequestHandler):
    """A forward proxy for plain http: the absolute URI's host gets the request."""

    protocol_version = "HTTP/1.1"
    forwarded: list[str]  # set on the class by the fixture

    def do_POST(self) -> None:  # http.server calls do_<METHOD>
        target = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        try:
            upstream.request("POST", target.path, body=body, headers=headers)
            reply = upstream.getresponse()
            data = reply.read()
        finally:
            upstream.close()
        self.forwarded.append(self.path)
        self.send_response(reply.status)
        for key, value in reply.getheaders():
            if key.lower() not in HOP_BY_HOP | {"content-length"}:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(name="proxy")
def proxy_fixture() -> Iterator[tuple[str, list[str]]]:
    forwarded: list[str] = []
    handler = type("Handler", (_Forwarder,), {"forwarded": forwarded})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", forwarded
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_the_environments_proxy_carries_every_request_of_the_session(
    lab: Lab, proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, forwarded = proxy
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", url)
    before = lab.requests_seen
    with Session(lab_connection(lab), lab.admin_password) as session:
        for _ in range(3):
            assert session.get_connectors()
    seen = lab.requests_seen - before
    assert seen >= 6  # the shell, three reads (command and receive each), the close
    assert len(forwarded) == seen
    assert all(path.startswith(f"http://{lab.host}:{lab.port}/") for path in forwarded)
