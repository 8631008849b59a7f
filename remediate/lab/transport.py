"""The lab's transport: one real delivery attempt for a queue, through its connector.

``deliver`` connects with smtplib to the connector's smart host and port (loopback only),
says EHLO (HELO with ForceHELO), uses STARTTLS when the mechanism or RequireTLS needs it (or
opportunistically), authenticates with AUTH LOGIN and the stored credential, and sends the
queued messages. It returns what was delivered, the queue's LastError in Exchange's formats,
and the Application-log events Exchange would write: 2016 when the sending side cannot
initialise the authentication, 2002 when the connection fails at once (refused). A disabled
connector sends nothing: its queue keeps Exchange's "no matching connector" LastError.

Names other than ``localhost`` and loopback addresses are never resolved: the lab answers
them as Exchange answers a name DNS does not know, and never connects anywhere else. The
server's own network path (``netpath.ServerNetwork``) decides where a connection goes.

With ProtocolLoggingLevel Verbose the session is written, line by line as it happens, to the
server's Send protocol log (``protocol_log``): connect, every command and reply (the AUTH
LOGIN credentials masked, the message content left out), disconnect.
"""

from __future__ import annotations

import datetime
import logging
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING

from remediate.lab.certs import certificate_names
from remediate.lab.model import Connector, QueuedMessage, now
from remediate.lab.netpath import DIRECT, ServerNetwork
from remediate.lab.protocol_log import MASK, ProtocolLog, SessionLog

if TYPE_CHECKING:
    from typing_extensions import Buffer

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
SESSION_TIMEOUT = 15.0

EVENT_2016 = (
    "An authentication credential initialization error {0} occurred with Send connector "
    "{1}. The authentication mechanism used was {2}. The name of the server that we were "
    "trying to authenticate to was {3}. This server was using the name {4}. Try reentering "
    "the credential. If the problem persists, contact Microsoft Support Services."
)  # the full text of the event page (exchange-notes.md, "Transport behaviour")
EVENT_2002 = "Send connector {0}: an error occurred while connecting to {1}."

_FAILOVER = (
    "Attempted failover to alternate host, but that did not succeed. Either there are no "
    "alternate hosts, or delivery failed to all alternate hosts. The last endpoint attempted "
    "was {endpoint}"
)
# SmartHostAuthMechanism as the transport names it in event 2016.
_TRANSPORT_MECHANISM = {
    "BasicAuth": "Login",
    "BasicAuthRequireTLS": "Login",
    "ExchangeServer": "ExchangeAuth",
}


@dataclass(frozen=True)
class EventDraft:
    event_id: int
    level: str
    category: str
    message: str
    fields: list[str]


@dataclass(frozen=True)
class DeliveryRequest:
    connector: Connector
    messages: list[QueuedMessage]
    local_fqdn: str
    network: ServerNetwork = DIRECT
    protocol_log: ProtocolLog | None = None


@dataclass
class DeliveryOutcome:
    """``last_error`` None means the queue drained. ``fqdn`` / ``ip`` name the smart host
    last tried (empty when none was reached), for the LastError wrapper."""

    delivered: list[str] = field(default_factory=list)
    last_error: str | None = None
    events: list[EventDraft] = field(default_factory=list)
    fqdn: str = ""
    ip: str = ""


def wrap_last_error(reply: str, when: datetime.datetime, fqdn: str = "", ip: str = "") -> str:
    """LastError as Exchange 2013 and later show it: ``[{LRT=...};{LED=...};{FQDN=...};
    {IP=...}]`` (exchange-notes.md, "Queues"). An empty reply stays empty (no error)."""
    if not reply:
        return ""
    hour = when.hour % 12 or 12
    stamp = f"{when.month}/{when.day}/{when.year} {hour}:{when:%M:%S %p}"  # en-US, as shown
    return f"[{{LRT={stamp}}};{{LED={reply}}};{{FQDN={fqdn}}};{{IP={ip}}}]"


def event_2016(reason: str, connector: str, mechanism: str, target: str, user: str) -> EventDraft:
    fields = [reason, connector, _TRANSPORT_MECHANISM.get(mechanism, mechanism), target, user]
    return EventDraft(2016, "Error", "SmtpSend", EVENT_2016.format(*fields), fields)


def event_2002(connector: str, endpoint: str) -> EventDraft:
    fields = [connector, endpoint]
    return EventDraft(2002, "Warning", "SmtpSend", EVENT_2002.format(*fields), fields)


def responded_with(reply: str, endpoint: str) -> str:
    """LastError for a reply the primary target (or the failed-over session) gave."""
    reply = reply.rstrip(".")
    return f'451 4.4.0 Primary target IP address responded with: "{reply}." ' + _FAILOVER.format(
        endpoint=endpoint
    )


def winsock_error(code: int, endpoint: str) -> str:
    """LastError for a connection that failed (10061 refused, 10060 timed out)."""
    return (
        "441 4.4.1 Error encountered while communicating with primary target IP address: "
        f'"Failed to connect. Winsock error code: {code}, Win32 error code: {code}." '
        + _FAILOVER.format(endpoint=endpoint)
    )


DNS_FAILED = (
    "451 4.4.0 DNS query failed. The error was: SMTPSEND.DNS.NonExistentDomain; nonexistent domain"
)
AUTH_TEMP_FAILURE = "454 4.7.0 Temporary authentication failure"
REQUIRE_STARTTLS = "451 5.7.3 Require STARTTLS to do basic authentication"
REQUIRE_BASIC_AUTH = "451 5.7.3 Require basic authentication"
REQUIRE_EXCHANGE_AUTH = "451 5.7.3 Cannot achieve Exchange Server authentication"
# Lab wording: the reply when RequireTLS meets a smart host without STARTTLS.
REQUIRE_TLS = "451 5.7.3 STARTTLS is required to send mail"
DISCONNECTED = "421 4.2.1 Unable to connect"
# A disabled connector is not a route: its messages wait as unroutable ones do on Exchange.
NO_MATCHING_CONNECTOR = "A matching connector cannot be found to route the external recipient"


class _Failed(Exception):
    def __init__(self, last_error: str, event: EventDraft | None = None) -> None:
        super().__init__(last_error)
        self.last_error = last_error
        self.event = event


def deliver(request: DeliveryRequest) -> DeliveryOutcome:
    """One attempt for the whole queue; never raises."""
    connector = request.connector
    outcome = DeliveryOutcome()
    if not connector.enabled:
        outcome.last_error = NO_MATCHING_CONNECTOR
        return outcome
    if connector.dns_routing_enabled or not connector.smart_hosts:
        outcome.last_error = DNS_FAILED  # the lab has no Internet DNS
        return outcome
    host = connector.smart_hosts[0]
    try:
        _Session(request, host, outcome).run()
    except _Failed as failure:
        outcome.last_error = failure.last_error
        if failure.event is not None:
            outcome.events.append(failure.event)
    except Exception:  # a lab bug must not leave the queue Active forever
        log.exception("lab delivery through %s failed", connector.name)
        outcome.last_error = DISCONNECTED
    return outcome


class _LoggedSMTP(smtplib.SMTP):
    """smtplib that writes each command and reply to a session's protocol log."""

    session_log: SessionLog | None = None
    _masking = False  # inside AUTH: the client's lines are credentials
    _data_asked = False
    _in_data = False

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        log = self.session_log
        if log is not None:
            address, local_port = sock.getsockname()[:2]
            log.local = _endpoint(address, local_port)
            log.event("+")
        return sock

    def send(self, s: Buffer | str) -> None:
        log = self.session_log
        if log is not None:
            text = s if isinstance(s, str) else bytes(s).decode(errors="replace")
            line = text.rstrip("\r\n")
            if self._in_data:
                log.info("sending message")
            else:
                log.sent(MASK if self._masking else line)
                self._masking = self._masking or line.upper().startswith("AUTH ")
                self._data_asked = line.upper() == "DATA"
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        code, message = super().getreply()
        log = self.session_log
        if log is not None:
            lines = message.decode(errors="replace").split("\n") or [""]
            for index, line in enumerate(lines):
                log.received(f"{code}{'-' if index < len(lines) - 1 else ' '}{line}".rstrip())
        if code != 334:
            self._masking = False
        self._in_data = self._data_asked and code == 354
        self._data_asked = False
        return code, message


def _endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


class _Session:
    def __init__(self, request: DeliveryRequest, host: str, outcome: DeliveryOutcome) -> None:
        self.connector = request.connector
        self.request = request
        self.host = host
        self.outcome = outcome
        self.endpoint = ""
        self.smtp: smtplib.SMTP | None = None
        self.announced = host
        self.log: SessionLog | None = None

    def run(self) -> None:
        network = self.request.network
        address = network.resolve(self.host)
        if address is None:
            raise _Failed(DNS_FAILED)
        port = self.connector.port
        self.endpoint = _endpoint(address, port)
        self.outcome.fqdn, self.outcome.ip = self.host.strip("[]"), address
        if address == "":  # not loopback: the lab never connects; looks unreachable
            raise _Failed(winsock_error(10060, f"{self.host.strip('[]')}:{port}"))
        log = self.request.protocol_log
        if log is not None and self.connector.protocol_logging_level == "Verbose":
            self.log = log.session(self.request.local_fqdn, self.connector.name, self.endpoint)
            self.log.info("attempting to connect")
        try:
            self._connect(*network.dial(address, port))
            self._converse()
        except (smtplib.SMTPServerDisconnected, OSError):
            raise _Failed(DISCONNECTED) from None
        finally:
            self._close()

    def _connect(self, address: str, port: int) -> None:
        smtp = _LoggedSMTP(local_hostname=self.request.local_fqdn, timeout=CONNECT_TIMEOUT)
        smtp.session_log = self.log
        try:
            code, reply = smtp.connect(address, port)
        except ConnectionRefusedError:
            self._log_failure(10061)
            raise _Failed(
                winsock_error(10061, self.endpoint),
                event_2002(self.connector.name, self.endpoint),
            ) from None
        except (smtplib.SMTPServerDisconnected, OSError):
            smtp.close()
            self._log_failure(10060)
            raise _Failed(winsock_error(10060, self.endpoint)) from None
        # smtplib names the TLS peer after it; typeshed omits this private attribute
        smtp._host = self.host.strip("[]")  # type: ignore[attr-defined]
        self.smtp = smtp
        assert smtp.sock is not None
        smtp.sock.settimeout(SESSION_TIMEOUT)
        if code != 220:
            raise _Failed(_reply(code, reply, self.endpoint))

    def _converse(self) -> None:
        smtp = self.smtp
        assert smtp is not None
        self._greet()
        mechanism = self.connector.smart_host_auth_mechanism
        needs_tls = mechanism == "BasicAuthRequireTLS" or self.connector.require_tls
        offered = smtp.has_extn("starttls")
        if needs_tls and not offered:
            if mechanism == "BasicAuthRequireTLS":
                raise _Failed(REQUIRE_STARTTLS, self._event_2016("Unsupported"))
            raise _Failed(REQUIRE_TLS)
        if offered and (needs_tls or not self.connector.ignore_starttls):
            self._starttls(strict=needs_tls or self._validates_certificate())
        if mechanism in ("BasicAuth", "BasicAuthRequireTLS"):
            self._auth_login()
        elif mechanism == "ExchangeServer" and not smtp.has_extn("x-anonymoustls"):
            raise _Failed(REQUIRE_EXCHANGE_AUTH, self._event_2016("Unsupported"))
        for message in self.request.messages:
            self._send(message)
        smtp.quit()

    def _greet(self) -> None:
        smtp = self.smtp
        assert smtp is not None
        if self.connector.force_helo:
            code, reply = smtp.helo(self.connector.fqdn or self.request.local_fqdn)
        else:
            code, reply = smtp.ehlo(self.connector.fqdn or self.request.local_fqdn)
        if code != 250:
            raise _Failed(_reply(code, reply, self.endpoint))
        self.announced = reply.decode(errors="replace").splitlines()[0].split(" ")[0] or self.host

    def _validates_certificate(self) -> bool:
        return self.connector.tls_auth_level in ("CertificateValidation", "DomainValidation")

    def _starttls(self, *, strict: bool) -> None:
        """STARTTLS; with ``strict`` the certificate must name the configured smart host
        (the lab's CA is the only one it meets, so the name is what matters here)."""
        smtp = self.smtp
        assert smtp is not None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            code, _reply_text = smtp.starttls(context=context)
        except (ssl.SSLError, smtplib.SMTPException):
            raise self._tls_failure("IllegalMessage") from None
        if code != 220:  # refused: smtplib left the session in clear text
            raise self._tls_failure("Unsupported")
        assert isinstance(smtp.sock, ssl.SSLSocket)  # starttls() wrapped it on 220
        if strict:
            der = smtp.sock.getpeercert(binary_form=True)
            names = certificate_names(der) if der else set()
            if self.host.strip("[]").lower() not in names:
                raise self._tls_failure("WrongPrincipal")
        self._greet()

    def _tls_failure(self, reason: str) -> _Failed:
        if self.connector.smart_host_auth_mechanism == "BasicAuthRequireTLS":
            return _Failed(
                responded_with(AUTH_TEMP_FAILURE, self.endpoint), self._event_2016(reason)
            )
        return _Failed(REQUIRE_TLS)

    def _auth_login(self) -> None:
        smtp = self.smtp
        assert smtp is not None
        credential = self.connector.credential
        if credential is None:
            raise _Failed(
                responded_with(AUTH_TEMP_FAILURE, self.endpoint),
                self._event_2016("UnknownCredentials"),
            )
        if "LOGIN" not in (smtp.esmtp_features.get("auth") or "").upper().split():
            raise _Failed(REQUIRE_BASIC_AUTH, self._event_2016("Unsupported"))
        smtp.user, smtp.password = credential.username, credential.password
        try:
            smtp.auth("LOGIN", smtp.auth_login, initial_response_ok=False)
        except smtplib.SMTPAuthenticationError as exc:
            reply = f"{exc.smtp_code} {_text(exc.smtp_error)}"
            raise _Failed(responded_with(reply, self.endpoint)) from None
        finally:
            smtp.user = smtp.password = ""

    def _send(self, message: QueuedMessage) -> None:
        smtp = self.smtp
        assert smtp is not None
        try:
            smtp.send_message(_email(message), message.sender, message.recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise _Failed(_reply(code, reply, self.endpoint)) from None
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            raise _Failed(_reply(exc.smtp_code, exc.smtp_error, self.endpoint)) from None
        self.outcome.delivered.append(message.message_id)

    def _event_2016(self, reason: str) -> EventDraft:
        credential = self.connector.credential
        user = credential.username if credential else self.request.local_fqdn.split(".")[0] + "$"
        return event_2016(
            reason,
            self.connector.name,
            self.connector.smart_host_auth_mechanism,
            f"SMTPSVC/{self.announced}",
            user,
        )

    def _log_failure(self, code: int) -> None:
        """A connection that failed (lab wording of the information line)."""
        if self.log is not None:
            self.log.info(f"Failed to connect. Winsock error code: {code}")

    def _close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.close()
            finally:
                self.smtp = None
                if self.log is not None:
                    self.log.event("-", "", "Local")


def _reply(code: int, reply: bytes | str, endpoint: str) -> str:
    return responded_with(f"{code} {_text(reply)}", endpoint)


def _text(reply: bytes | str) -> str:
    """smtplib's replies are bytes, though its exceptions are typed bytes or str."""
    return reply.decode(errors="replace") if isinstance(reply, bytes) else reply


def _email(message: QueuedMessage) -> EmailMessage:
    email = EmailMessage()
    email["From"] = message.sender
    email["To"] = ", ".join(message.recipients)
    email["Subject"] = message.subject
    email["Date"] = format_datetime(now())
    email["Message-ID"] = message.message_id if "@" in message.message_id else make_msgid()
    email.set_content(message.body)
    return email
