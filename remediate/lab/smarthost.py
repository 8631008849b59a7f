"""The lab's SMTP smart host: a real aiosmtpd server on loopback.

Like a typical relay it advertises STARTTLS (certificate from the lab CA naming ``localhost``
and the listen address) and AUTH LOGIN only (no PLAIN), offers AUTH only after STARTTLS, and
accepts exactly one relay account; MAIL FROM needs a successful AUTH. ``starttls=False`` or
``auth=False`` build the weaker servers other tests need, ``cert_names`` a certificate that
names other hosts. Received messages are kept in ``messages`` so tests can see them.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
import ssl
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from remediate.lab.certs import LabCA

SERVER_NAME = "localhost"


class _DropLoginDataNotice(logging.Filter):
    """aiosmtpd 1.4 logs a deprecation notice about its own Session.login_data on every
    successful AUTH; it says nothing about the lab."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Session.login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_DropLoginDataNotice())


class _TrackedSMTP(SMTP):
    """aiosmtpd's SMTP session, remembering its socket's transport while it is open."""

    def __init__(self, open_transports: set[asyncio.Transport], *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._open_transports = open_transports
        self._socket_transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # the first is the socket's; not the TLS transport STARTTLS lays over it
        if self._socket_transport is None and isinstance(transport, asyncio.Transport):
            self._socket_transport = transport
            self._open_transports.add(transport)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._socket_transport is not None:
            self._open_transports.discard(self._socket_transport)
        super().connection_lost(exc)


class _ClosingController(Controller):
    """aiosmtpd's Controller, closing the connections still open when it stops: its own
    stop cancels their tasks and leaves their sockets to the garbage collector, which then
    warns (ResourceWarning) wherever it happens to run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._open_transports: set[asyncio.Transport] = set()

    def factory(self) -> SMTP:
        return _TrackedSMTP(self._open_transports, self.handler, **self.SMTP_kwargs)

    def stop(self, no_assert: bool = False) -> None:
        if self.loop.is_running():
            closed = threading.Event()

            def close_all() -> None:
                for transport in list(self._open_transports):
                    transport.abort()  # connection_lost is called before the loop stops
                closed.set()

            self.loop.call_soon_threadsafe(close_all)
            closed.wait(10)
        super().stop(no_assert)


@dataclass(frozen=True)
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    user: str | None
    helo: str | None = None  # the name the sending server gave in EHLO / HELO


class _Handler:
    def __init__(
        self, sink: list[ReceivedMessage], lock: threading.Lock, *, require_auth: bool
    ) -> None:
        self._sink = sink
        self._lock = lock
        self._require_auth = require_auth

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list
    ) -> list[str]:
        session.host_name = hostname
        if self._require_auth:
            return responses
        return [line for line in responses if not line.startswith("250-AUTH")]

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        """MAIL FROM needs a successful AUTH (checked here rather than with aiosmtpd's
        auth_required, which also works when STARTTLS is switched off)."""
        if self._require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Sender OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        user = session.auth_data.decode() if isinstance(session.auth_data, bytes) else None
        message = ReceivedMessage(
            mail_from=str(envelope.mail_from),
            rcpt_tos=list(envelope.rcpt_tos),
            data=envelope.original_content or b"",  # the bytes as received (content may be decoded)
            user=user,
            helo=session.host_name,
        )
        with self._lock:
            self._sink.append(message)
        return "250 2.6.0 Queued mail for delivery"


class SmartHost:
    """``start()`` / ``stop()``; ``port`` is known after ``start()`` when 0 was asked."""

    def __init__(
        self,
        listen: tuple[str, int] = ("127.0.0.1", 0),
        *,
        ca: LabCA | None = None,
        relay_user: str,
        relay_password: str,
        starttls: bool = True,
        auth: bool = True,
        cert_names: list[str] | None = None,
    ) -> None:
        if starttls and ca is None:
            raise ValueError("STARTTLS needs the lab CA to issue the smart host's certificate")
        self.host, self.port = listen
        self._ca = ca
        self._relay_user = relay_user
        self._relay_password = relay_password
        self.starttls = starttls
        self.auth = auth
        self._cert_names = cert_names
        self._lock = threading.Lock()
        self._messages: list[ReceivedMessage] = []
        self._controller: _ClosingController | None = None

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A copy of what the smart host accepted so far, oldest first."""
        with self._lock:
            return list(self._messages)

    def start(self) -> SmartHost:
        if self.port == 0:
            self.port = _free_port(self.host)
        kwargs: dict[str, Any] = {
            "auth_exclude_mechanism": ["PLAIN"],
            "auth_require_tls": self.starttls,
        }
        if self.starttls:
            kwargs["tls_context"] = self._tls_context()
        if self.auth:
            kwargs["authenticator"] = self._authenticate
        else:
            kwargs["auth_exclude_mechanism"] = ["PLAIN", "LOGIN"]
        self._controller = _ClosingController(
            _Handler(self._messages, self._lock, require_auth=self.auth),
            hostname=self.host,
            port=self.port,
            server_hostname=SERVER_NAME,
            ready_timeout=10,
            **kwargs,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmartHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if mechanism != "LOGIN" or not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user_ok = hmac.compare_digest(data.login, self._relay_user.encode())
        password_ok = hmac.compare_digest(data.password, self._relay_password.encode())
        if user_ok and password_ok:
            return AuthResult(success=True, auth_data=data.login)
        return AuthResult(success=False, handled=False)

    def _tls_context(self) -> ssl.SSLContext:
        assert self._ca is not None
        names = self._cert_names or sorted({SERVER_NAME, self.host})
        issued = self._ca.issue(names)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # load_cert_chain reads files only: a private temporary directory, removed at once.
        with tempfile.TemporaryDirectory(prefix="remediate-smarthost-") as tmp:
            cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            cert_file.write_bytes(issued.cert_pem)
            key_file.touch(mode=0o600)
            key_file.write_bytes(issued.key_pem)
            context.load_cert_chain(cert_file, key_file)
        return context


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
