"""SMTP probe of a smart host, run from the operator's machine (not the transport server).

It connects, reads the banner, sends EHLO, notes STARTTLS and the AUTH mechanisms offered,
performs the TLS handshake and checks that the certificate names the smart host. The name
is checked even when the chain is not trusted; trust is reported separately. The probe
never sends AUTH and never sees a password.
"""

from __future__ import annotations

import ipaddress
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from remediate.core.exchange import AuthMechanism

DEFAULT_TIMEOUT = 10.0
EHLO_NAME = "remediate-probe.invalid"


@dataclass(frozen=True)
class Certificate:
    subject: str
    names: tuple[str, ...]  # SAN DNS names and IP addresses (the CN when there is no SAN)
    matches_host: bool
    trusted: bool
    trust_error: str | None = None


@dataclass(frozen=True)
class ProbeResult:
    """What the smart host showed. ``error`` is set when the probe stopped early."""

    host: str
    port: int
    connected: bool = False
    connect_ms: float | None = None
    banner: str | None = None
    ehlo_ok: bool = False
    starttls_offered: bool = False
    auth_before_tls: tuple[str, ...] = ()
    tls_ok: bool | None = None  # None: not attempted (STARTTLS not offered)
    tls_version: str | None = None
    tls_error: str | None = None
    certificate: Certificate | None = None
    auth_after_tls: tuple[str, ...] = ()
    total_ms: float | None = None
    error: str | None = None

    @property
    def auth_mechanisms(self) -> tuple[str, ...]:
        """What a sender sees once it has done what it can (TLS when offered and working)."""
        return self.auth_after_tls if self.tls_ok else self.auth_before_tls

    @property
    def offers_login(self) -> bool:
        return "LOGIN" in self.auth_mechanisms


@dataclass(frozen=True)
class Verdict:
    mechanism: AuthMechanism
    works: bool
    reason: str


def probe(
    host: str,
    port: int = 25,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    ca_file: Path | None = None,
) -> ProbeResult:
    """Probe ``host:port`` (an IP smart host may be bracketed, as Exchange writes it).
    Never raises for network trouble: it is reported in the result."""
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    started = time.monotonic()
    smtp = _Client(host, timeout)
    try:
        code, banner = smtp.connect(host, port)
    except (OSError, smtplib.SMTPException) as exc:
        smtp.close()  # no greeting: smtplib closes on most such paths, not on every one
        return ProbeResult(host, port, error=_describe(exc, host, port))
    connect_ms = (time.monotonic() - started) * 1000
    partial = ProbeResult(
        host, port, connected=True, connect_ms=connect_ms, banner=_text(code, banner)
    )
    try:
        return _converse(smtp, partial, ca_file, timeout, started)
    except (OSError, smtplib.SMTPException) as exc:
        return _replace(partial, error=_describe(exc, host, port), total_ms=_since(started))
    finally:
        _quit(smtp)


def _converse(
    smtp: smtplib.SMTP,
    result: ProbeResult,
    ca_file: Path | None,
    timeout: float,
    started: float,
) -> ProbeResult:
    code, _ = smtp.ehlo(EHLO_NAME)
    if code != 250:
        return _replace(result, error=f"EHLO refused with {code}", total_ms=_since(started))
    result = _replace(
        result,
        ehlo_ok=True,
        starttls_offered=smtp.has_extn("starttls"),
        auth_before_tls=_auth(smtp),
    )
    if not result.starttls_offered:
        return _replace(result, total_ms=_since(started))
    tls = _starttls(result.host, result.port, ca_file, timeout)
    return _replace(
        result,
        tls_ok=tls.ok,
        tls_version=tls.version,
        tls_error=tls.error,
        certificate=tls.certificate,
        auth_after_tls=tls.auth,
        total_ms=_since(started),
    )


@dataclass
class _Tls:
    ok: bool
    version: str | None = None
    error: str | None = None
    certificate: Certificate | None = None
    auth: tuple[str, ...] = field(default=())


def _starttls(host: str, port: int, ca_file: Path | None, timeout: float) -> _Tls:
    """A fresh session for the handshake: first verifying the chain, and when the chain is
    not trusted once more without verification, so the name and AUTH can still be seen."""
    trust_error: str | None = None
    for verify in (True, False):
        smtp = _Client(host, timeout)
        try:
            smtp.connect(host, port)
            smtp.ehlo(EHLO_NAME)
            code, reply = smtp.starttls(context=_context(verify, ca_file))
            if code != 220:
                return _Tls(ok=False, error=_text(code, reply))
            sock = smtp.sock
            assert isinstance(sock, ssl.SSLSocket)
            der = sock.getpeercert(binary_form=True)
            version = sock.version()
            smtp.ehlo(EHLO_NAME)
            cert = _certificate(der, host, trusted=verify, trust_error=trust_error)
            return _Tls(ok=True, version=version, certificate=cert, auth=_auth(smtp))
        except ssl.SSLCertVerificationError as exc:
            trust_error = exc.verify_message or str(exc)
        except ssl.SSLError as exc:
            return _Tls(ok=False, error=f"TLS handshake failed: {exc.reason or exc}")
        except (OSError, smtplib.SMTPException) as exc:
            return _Tls(ok=False, error=_describe(exc, host, port))
        finally:
            _quit(smtp)
    return _Tls(ok=False, error=f"TLS handshake failed: {trust_error}")


def _context(verify: bool, ca_file: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.check_hostname = False  # the name is checked by _certificate, reported apart
    if not verify:
        context.verify_mode = ssl.CERT_NONE
    return context


def _certificate(
    der: bytes | None, host: str, *, trusted: bool, trust_error: str | None
) -> Certificate | None:
    if not der:
        return None
    cert = x509.load_der_x509_certificate(der)
    names = certificate_names(cert)
    return Certificate(
        subject=cert.subject.rfc4514_string(),
        names=names,
        matches_host=name_matches(host, names),
        trusted=trusted,
        trust_error=trust_error,
    )


def certificate_names(cert: x509.Certificate) -> tuple[str, ...]:
    """SAN DNS names and IP addresses; the subject CN only when there is no SAN."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return tuple(str(a.value).lower() for a in cns)
    dns = [n.lower() for n in san.get_values_for_type(x509.DNSName)]
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return tuple(dns + ips)


def name_matches(host: str, names: tuple[str, ...]) -> bool:
    """RFC 6125 style: exact name, a left-most ``*`` label, or an IP address listed as such."""
    host = host.strip("[]").rstrip(".").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for name in names:
        if address is not None:
            try:
                if ipaddress.ip_address(name) == address:
                    return True
            except ValueError:
                continue
        elif name == host:
            return True
        elif name.startswith("*.") and "." in host:
            if host.split(".", 1)[1] == name[2:]:
                return True
    return False


def compatible_mechanisms(result: ProbeResult) -> list[Verdict]:
    """Each SmartHostAuthMechanism a connector could use against what the probe saw."""
    return [
        _basic(result),
        _basic_tls(result),
        _exchange_server(result),
        _external(result),
        _none(result),
    ]


def _basic(r: ProbeResult) -> Verdict:
    m = AuthMechanism.BASIC_AUTH
    if not r.ehlo_ok:
        return Verdict(m, False, "the smart host did not answer EHLO")
    if r.offers_login:
        how = "after STARTTLS" if r.tls_ok else "without TLS"
        return Verdict(m, True, f"AUTH LOGIN is offered {how}")
    if r.starttls_offered and not r.tls_ok and "LOGIN" in r.auth_before_tls:
        return Verdict(m, False, "STARTTLS is offered but fails, so Exchange cannot go on")
    return Verdict(m, False, "the smart host does not offer AUTH LOGIN")


def _basic_tls(r: ProbeResult) -> Verdict:
    m = AuthMechanism.BASIC_AUTH_REQUIRE_TLS
    if not r.starttls_offered:
        return Verdict(m, False, "the smart host does not offer STARTTLS")
    if not r.tls_ok:
        return Verdict(m, False, f"STARTTLS fails: {r.tls_error}")
    if r.certificate is None or not r.certificate.matches_host:
        names = ", ".join(r.certificate.names) if r.certificate else "nothing"
        return Verdict(m, False, f"the certificate names {names}, not {r.host}")
    if "LOGIN" not in r.auth_after_tls:
        return Verdict(m, False, "AUTH LOGIN is not offered after STARTTLS")
    return Verdict(m, True, "STARTTLS works, the certificate names the host, AUTH LOGIN offered")


def _exchange_server(r: ProbeResult) -> Verdict:
    return Verdict(
        AuthMechanism.EXCHANGE_SERVER,
        False,
        "only for another Exchange organisation's servers (X-ANONYMOUSTLS), not a relay",
    )


def _external(r: ProbeResult) -> Verdict:
    m = AuthMechanism.EXTERNAL_AUTHORITATIVE
    if not r.ehlo_ok:
        return Verdict(m, False, "the smart host did not answer EHLO")
    if r.auth_mechanisms:
        return Verdict(m, False, "sends no AUTH, but the smart host offers AUTH (wants a login)")
    return Verdict(m, True, "sends no AUTH; only if the link is secured outside Exchange")


def _none(r: ProbeResult) -> Verdict:
    m = AuthMechanism.NONE
    if not r.ehlo_ok:
        return Verdict(m, False, "the smart host did not answer EHLO")
    if r.auth_mechanisms:
        return Verdict(m, False, "the smart host offers AUTH, so it most likely requires a login")
    return Verdict(m, True, "the smart host offers no AUTH (anonymous or IP-based relay)")


class _Client(smtplib.SMTP):
    """smtplib keeps the name STARTTLS sends as SNI only when it connects in ``__init__``,
    which would swallow the banner; set it here and connect explicitly."""

    def __init__(self, host: str, timeout: float) -> None:
        super().__init__(timeout=timeout, local_hostname=EHLO_NAME)
        self._host = host


def _auth(smtp: smtplib.SMTP) -> tuple[str, ...]:
    if not smtp.has_extn("auth"):
        return ()
    return tuple(smtp.esmtp_features["auth"].upper().split())


def _describe(exc: BaseException, host: str, port: int) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return f"connection to {host}:{port} refused (nothing listens there or a firewall)"
    if isinstance(exc, socket.timeout | TimeoutError):
        return f"no answer from {host}:{port} within the timeout (firewall or wrong port)"
    if isinstance(exc, socket.gaierror):
        return f"the name {host} does not resolve from this machine"
    if isinstance(exc, smtplib.SMTPServerDisconnected) and "timed out" in str(exc):
        # smtplib reports a reply that never came as a closed connection
        return f"no answer from {host}:{port} within the timeout (connected, but no SMTP reply)"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"{host}:{port} closed the connection ({exc})"
    return f"{host}:{port}: {exc}"


def _text(code: int, reply: bytes | str) -> str:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    return f"{code} {text}".strip()


def _since(started: float) -> float:
    return (time.monotonic() - started) * 1000


def _replace(result: ProbeResult, **changes: object) -> ProbeResult:
    return replace(result, **changes)  # type: ignore[arg-type]


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()
