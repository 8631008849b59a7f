"""A smart-host queue's LastError, read the way an Exchange admin would read it.

LastError comes in several shapes: a bare SMTP reply (``454 4.7.0 ...``), Exchange's failover
sentences (``451 4.4.0 Primary target IP address responded with: "<reply>." ...``,
``441 4.4.1 ... Winsock error code: 10061 ...``), and from Exchange 2013 on a wrapper
``[{LRT=...};{LED=<reply>};{FQDN=...};{IP=...}]``. ``parse_last_error`` unwraps all of them,
finds the innermost reply, and maps it to a cause and the action that fixes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum


class Cause(StrEnum):
    CREDENTIAL = "credential"  # 454 4.7.0: no credential could be initialised (event 2016)
    PASSWORD_REJECTED = "password-rejected"  # noqa: S105 - a cause, not a secret; 535 5.7.3: the smart host refused the password
    SMTP_AUTH_DISABLED = "smtp-auth-disabled"  # 5.7.139 / 5.7.30 (Exchange Online)
    STARTTLS_MISSING = "starttls-missing"
    AUTH_LOGIN_MISSING = "auth-login-missing"
    EXCHANGE_AUTH = "exchange-auth"
    CERTIFICATE = "certificate"
    CONNECTION_REFUSED = "connection-refused"
    TIMEOUT = "timeout"
    DNS = "dns"
    UNREACHABLE = "unreachable"
    REJECTED = "rejected"  # any other reply from the smart host
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class LastErrorDiagnosis:
    cause: Cause
    summary: str
    action: str
    smtp_code: int | None
    enhanced_status: str | None
    raw: str
    reply: str  # the innermost reply or error text
    fields: dict[str, str] = field(default_factory=dict)  # LRT, LED, FQDN, IP of the wrapper
    winsock: int | None = None


_WRAPPER = re.compile(r"^\s*\[\s*(\{.*\})\s*\]\s*$", re.S)
_FIELD = re.compile(r"\{\s*([A-Za-z]+)\s*=(.*?)\}\s*(?:;|$)", re.S)
_RESPONDED = re.compile(r'responded with:\s*"(?P<reply>.*?)\.?"\s*(?:Attempted|$)', re.S)
_COMMUNICATING = re.compile(
    r'communicating with primary target IP address:\s*"(?P<reply>.*?)"', re.S
)
_STATUS = re.compile(r"^\s*(?P<code>[245]\d\d)[ -](?:(?P<enhanced>[245]\.\d{1,3}\.\d{1,3})\s*)?")
_WINSOCK = re.compile(r"Winsock error code:\s*(\d+)", re.I)

# (pattern over the reply, cause, summary, action); first match wins.
_RULES: tuple[tuple[re.Pattern[str], Cause, str, str], ...] = tuple(
    (re.compile(p, re.I), c, s, a)
    for p, c, s, a in (
        (
            r"5\.7\.139|5\.7\.30\b|SmtpClientAuthentication is disabled",
            Cause.SMTP_AUTH_DISABLED,
            "the smart host (Exchange Online) does not allow SMTP AUTH for this account",
            "use connector-based relay (certificate or IP) or enable SMTP AUTH for the mailbox",
        ),
        (
            r"\b535\b|5\.7\.8\b|authentication unsuccessful|authentication credentials invalid",
            Cause.PASSWORD_REJECTED,
            "the smart host refused the user name or password",
            "re-enter the relay credential (the password was probably rotated at the provider)",
        ),
        (
            r"Require STARTTLS|STARTTLS is required|must issue a STARTTLS",
            Cause.STARTTLS_MISSING,
            "the mechanism needs STARTTLS but the smart host does not offer it on this port",
            "use the port where the smart host offers STARTTLS (often 587), or a mechanism "
            "without TLS (BasicAuth) if the link is trusted",
        ),
        (
            r"Require basic authentication",
            Cause.AUTH_LOGIN_MISSING,
            "the smart host does not offer AUTH LOGIN, which BasicAuth needs",
            "use the smart host's submission port, or ExternalAuthoritative/None if it relays "
            "by IP",
        ),
        (
            r"Exchange Server authentication",
            Cause.EXCHANGE_AUTH,
            "ExchangeServer authentication needs an Exchange server at the other end",
            "choose BasicAuth/BasicAuthRequireTLS for a non-Exchange smart host",
        ),
        (
            r"certificate|TlsCertificateName|4\.7\.5\b",
            Cause.CERTIFICATE,
            "TLS failed on a certificate (name, trust or TlsCertificateName)",
            "make SmartHosts name the FQDN the certificate carries, or fix the certificate",
        ),
        (
            r"454 4\.7\.0|Temporary authentication failure",
            Cause.CREDENTIAL,
            "the connector could not set up authentication (event 2016): credential missing, "
            "wiped, or a mechanism the smart host does not offer",
            "re-enter the connector's credential with a mechanism the smart host offers",
        ),
        (
            r"DNS query failed|NonExistentDomain|Winsock error code:\s*11001|host not found",
            Cause.DNS,
            "the smart host's name does not resolve",
            "correct SmartHosts, or fix DNS for that name on the transport servers",
        ),
        (
            r"Winsock error code:\s*10061|actively refused|Connection refused",
            Cause.CONNECTION_REFUSED,
            "nothing accepts connections on the smart host's port",
            "correct the connector's Port (or SmartHosts), or start the service on the host",
        ),
        (
            r"Winsock error code:\s*10060|timed out|did not properly respond",
            Cause.TIMEOUT,
            "the connection timed out (firewall, routing, or a host that is down)",
            "check firewalls and routing between the transport servers and the smart host",
        ),
        (
            r"^421 4\.2\.1|Unable to connect|Failed to connect",
            Cause.UNREACHABLE,
            "the transport could not connect to the smart host",
            "check the smart host name, port and reachability from the transport servers",
        ),
    )
)


def unwrap(text: str) -> tuple[str, dict[str, str]]:
    """The LastError without the ``[{LRT=...};{LED=...}]`` wrapper, and the wrapper's fields."""
    match = _WRAPPER.match(text)
    if not match:
        return text.strip(), {}
    fields = {m.group(1).upper(): m.group(2).strip() for m in _FIELD.finditer(match.group(1))}
    return fields.get("LED", text.strip()), fields


def innermost_reply(text: str) -> str:
    """The reply inside Exchange's failover sentences, or the text itself."""
    for pattern in (_RESPONDED, _COMMUNICATING):
        found = pattern.search(text)
        if found:
            return found.group("reply").strip()
    return text.strip()


def parse_last_error(text: str | None) -> LastErrorDiagnosis | None:
    """None for an empty LastError (nothing went wrong yet)."""
    if text is None or not text.strip():
        return None
    outer, fields = unwrap(text)
    reply = innermost_reply(outer)
    status = _STATUS.match(reply) or _STATUS.match(outer)
    winsock = _WINSOCK.search(outer)
    matched = next(
        (rule[1:] for rule in _RULES if rule[0].search(reply) or rule[0].search(outer)), None
    )
    if matched is not None:
        cause, summary, action = matched
    elif status:
        cause = Cause.REJECTED
        summary = f"the smart host answered {reply}"
        action = "read the reply; the verbose protocol log shows the whole conversation"
    else:
        cause = Cause.UNKNOWN
        summary = "an error this tool does not recognise"
        action = "turn on verbose protocol logging on the connector and read the send log"
    return LastErrorDiagnosis(
        cause=cause,
        summary=summary,
        action=action,
        smtp_code=int(status.group("code")) if status else None,
        enhanced_status=status.group("enhanced") if status else None,
        raw=text,
        reply=reply,
        fields=fields,
        winsock=int(winsock.group(1)) if winsock else None,
    )
