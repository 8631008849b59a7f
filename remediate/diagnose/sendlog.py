"""Exchange's Send protocol log, read and explained: which step of the SMTP session failed,
and what the smart host offered and answered.

The format (Microsoft Learn, "Protocol logging" for Exchange Server): ``#`` header lines,
among them ``#Fields:`` naming the columns (date-time, connector-id, session-id,
sequence-number, local-endpoint, remote-endpoint, event, data, context), then one CSV line per
protocol event; ``event`` is ``+`` connect, ``-`` disconnect, ``>`` sent, ``<`` received,
``*`` information. A session's lines share a session-id.

The log comes from the server (untrusted text): every line is read once (linear), lines
longer than ``MAX_LINE`` are skipped, at most ``MAX_LINES`` lines and ``MAX_SESSIONS``
sessions are kept, and per session at most ``MAX_EVENTS`` events (the earliest: where a
session fails is near its start).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

MAX_LINE = 8 * 1024
MAX_LINES = 20_000
MAX_SESSIONS = 200
MAX_EVENTS = 200
DEFAULT_FIELDS = (
    "date-time",
    "connector-id",
    "session-id",
    "sequence-number",
    "local-endpoint",
    "remote-endpoint",
    "event",
    "data",
    "context",
)


class Outcome(StrEnum):
    CONNECT_FAILED = "connect-failed"
    STARTTLS_MISSING = "starttls-missing"
    STARTTLS_FAILED = "starttls-failed"
    AUTH_NOT_OFFERED = "auth-login-not-offered"
    AUTH_REJECTED = "auth-rejected"
    EXCHANGE_AUTH_NOT_OFFERED = "exchange-auth-not-offered"
    REJECTED = "rejected"
    DELIVERED = "delivered"
    INCOMPLETE = "incomplete"


@dataclass(frozen=True)
class LogEvent:
    time: str
    connector: str
    session: str
    sequence: int
    remote: str
    kind: str
    data: str
    context: str


@dataclass
class Session:
    """One SMTP session of a connector, explained."""

    session_id: str
    connector: str
    remote: str = ""
    started: str = ""
    connected: bool = False
    banner: str = ""
    ehlo_answered: bool = False
    offered: tuple[str, ...] = ()  # the EHLO extensions of the last EHLO answered
    starttls_offered: bool = False
    tls: bool = False
    auth_sent: bool = False
    mail_sent: bool = False
    failed_command: str = ""
    failed_reply: str = ""
    information: list[str] = field(default_factory=list)
    outcome: Outcome = Outcome.INCOMPLETE

    @property
    def auth_offered(self) -> tuple[str, ...]:
        for extension in self.offered:
            name, _, rest = extension.partition(" ")
            if name.upper() == "AUTH":
                return tuple(rest.upper().split())
        return ()

    def explanation(self) -> str:
        """One sentence: which step failed and what the smart host did."""
        offered = ", ".join(self.offered) or "nothing"
        where = self.remote or "the smart host"
        if self.outcome is Outcome.CONNECT_FAILED:
            detail = f" ({self.information[-1]})" if self.information else ""
            return f"the connection to {where} failed: no SMTP session{detail}"
        if self.outcome is Outcome.AUTH_REJECTED:
            return (
                f"{where} refused the login: AUTH LOGIN was answered {self.failed_reply!r} "
                "(user name or password wrong, or SMTP AUTH not allowed for the account)"
            )
        if self.outcome is Outcome.AUTH_NOT_OFFERED:
            tls = " after STARTTLS" if self.tls else ""
            return (
                f"{where} offered no AUTH LOGIN{tls} (EHLO offered: {offered}); Exchange needs "
                "AUTH LOGIN for BasicAuth and stopped before logging in"
            )
        if self.outcome is Outcome.EXCHANGE_AUTH_NOT_OFFERED:
            return (
                f"{where} offered none of Exchange's own extensions (X-ANONYMOUSTLS, X-EXPS; "
                f"EHLO offered: {offered}): ExchangeServer authentication works only with "
                "Exchange servers, so no login was tried"
            )
        if self.outcome is Outcome.STARTTLS_MISSING:
            return (
                f"{where} did not offer STARTTLS (EHLO offered: {offered}); the session ended "
                "before any login (BasicAuthRequireTLS and RequireTLS need STARTTLS)"
            )
        if self.outcome is Outcome.STARTTLS_FAILED:
            return f"{where} answered STARTTLS with {self.failed_reply!r}"
        if self.outcome is Outcome.REJECTED:
            return f"{where} answered {self.failed_command} with {self.failed_reply!r}"
        if self.outcome is Outcome.DELIVERED:
            return f"the session with {where} went through (EHLO offered: {offered})"
        return f"the session with {where} ended early (EHLO offered: {offered})"


@dataclass
class ParsedLog:
    events: list[LogEvent] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def parse(lines: Iterable[str]) -> ParsedLog:
    """The log's events in file order; lines that are not events are counted in problems."""
    parsed = ParsedLog()
    columns = {name: index for index, name in enumerate(DEFAULT_FIELDS)}
    skipped = 0
    for number, line in enumerate(lines, start=1):
        if number > MAX_LINES:
            parsed.problems.append(f"more than {MAX_LINES} lines: the rest was not read")
            break
        if len(line) > MAX_LINE:
            skipped += 1
            continue
        text = line.rstrip("\r\n")
        if text.startswith("#"):
            if text.lower().startswith("#fields:"):
                names = [n.strip().lower() for n in text.split(":", 1)[1].split(",")]
                columns = {name: index for index, name in enumerate(names)}
            continue
        if not text.strip():
            continue
        event = _event(text, columns)
        if event is None:
            skipped += 1
            continue
        parsed.events.append(event)
    if skipped:
        parsed.problems.append(f"{skipped} line(s) not read (not a protocol-log event)")
    return parsed


def _event(text: str, columns: dict[str, int]) -> LogEvent | None:
    try:
        row = next(csv.reader([text]))
    except (csv.Error, StopIteration):
        return None

    def cell(name: str) -> str:
        index = columns.get(name)
        return row[index] if index is not None and index < len(row) else ""

    sequence = cell("sequence-number")
    kind = cell("event")
    if not cell("session-id") or not sequence.isdigit() or kind not in ("+", "-", ">", "<", "*"):
        return None
    return LogEvent(
        time=cell("date-time"),
        connector=cell("connector-id"),
        session=cell("session-id"),
        sequence=int(sequence),
        remote=cell("remote-endpoint"),
        kind=kind,
        data=cell("data"),
        context=cell("context"),
    )


def sessions(
    parsed: ParsedLog, connector: str | None = None, mechanism: str | None = None
) -> list[Session]:
    """The connector's sessions (all when None), in the order they started, explained;
    ``mechanism`` (its SmartHostAuthMechanism) tells what the session needed."""
    grouped: dict[str, list[LogEvent]] = {}
    for event in parsed.events:
        if connector is not None and event.connector.lower() != connector.lower():
            continue
        found = grouped.get(event.session)
        if found is None:
            if len(grouped) >= MAX_SESSIONS:
                grouped.pop(next(iter(grouped)))  # keep the newest sessions
            found = grouped[event.session] = []
        if len(found) < MAX_EVENTS:
            found.append(event)
    return [_explain(events, mechanism) for events in grouped.values()]


def _explain(events: list[LogEvent], mechanism: str | None) -> Session:
    events = sorted(events, key=lambda e: e.sequence)
    first = events[0]
    session = Session(first.session, first.connector, remote=first.remote, started=first.time)
    command = ""
    extensions: list[str] = []
    in_ehlo = in_auth = False
    for event in events:
        if event.kind == "+":
            session.connected = True
        elif event.kind == "*":
            if event.context:
                session.information.append(event.context)
        elif event.kind == ">":
            if command == "AUTH" and in_auth:
                continue  # the login's own lines (masked in the log) belong to AUTH
            command = event.data.split(" ", 1)[0].upper()
            in_auth = command == "AUTH"
            if command in ("EHLO", "HELO"):
                in_ehlo, extensions = True, []
            session.auth_sent = session.auth_sent or command == "AUTH"
            session.mail_sent = session.mail_sent or command == "MAIL"
        elif event.kind == "<":
            code, last, text = _reply(event.data)
            if code is None:
                continue
            in_auth = in_auth and code == 334
            if not command and not session.banner:
                session.banner = event.data
            if in_ehlo and code == 250:
                extensions.append(text)  # the first line is the greeting
                if last:
                    session.ehlo_answered = True
                    session.offered = tuple(e for e in extensions[1:] if e)
                    session.starttls_offered = any(e.upper() == "STARTTLS" for e in session.offered)
                    in_ehlo = False
                continue
            if command == "STARTTLS" and code == 220:
                session.tls = True
            elif code >= 400 and not session.failed_reply:
                session.failed_command = command or "the greeting"
                session.failed_reply = event.data
    session.outcome = _outcome(session, mechanism)
    return session


def _reply(data: str) -> tuple[int | None, bool, str]:
    """(code, whether it is the reply's last line, text after the code)."""
    head = data[:3]
    if len(data) < 3 or not head.isdigit():
        return None, True, ""
    return int(head), data[3:4] != "-", data[4:]


_EXCHANGE_EXTENSIONS = ("X-ANONYMOUSTLS", "X-EXPS")


def _outcome(s: Session, mechanism: str | None) -> Outcome:
    if not s.connected:
        return Outcome.CONNECT_FAILED
    if s.failed_reply:
        if s.failed_command == "AUTH":
            return Outcome.AUTH_REJECTED
        if s.failed_command == "STARTTLS":
            return Outcome.STARTTLS_FAILED
        return Outcome.REJECTED
    if s.mail_sent:
        return Outcome.DELIVERED
    if not s.ehlo_answered:
        return Outcome.INCOMPLETE
    if not s.auth_sent:
        named = {e.split(" ", 1)[0].upper() for e in s.offered}
        if mechanism == "ExchangeServer" and not named & set(_EXCHANGE_EXTENSIONS):
            return Outcome.EXCHANGE_AUTH_NOT_OFFERED
        if not s.starttls_offered and not s.tls:
            return Outcome.STARTTLS_MISSING
        if "LOGIN" not in s.auth_offered:
            return Outcome.AUTH_NOT_OFFERED
    return Outcome.INCOMPLETE
