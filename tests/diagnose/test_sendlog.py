"""The Send protocol log parser (``remediate.diagnose.sendlog``): sessions explained, and hostile
input read within its bounds. The lines follow the format of Microsoft Learn's "Protocol
logging" page for Exchange Server (the ``#Fields:`` header, events ``+ - > < *``); they are
written here by hand, not produced by the lab."""

from __future__ import annotations

from remediate.diagnose import sendlog
from remediate.diagnose.sendlog import Outcome

HEADER = [
    "#Software: Microsoft Exchange Server",
    "#Version: 15.0.0.0",
    "#Log-type: SMTP Send Protocol Log",
    "#Date: 2026-12-01T09:00:00.000Z",
    "#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,"
    "remote-endpoint,event,data,context",
]
CONNECTOR = "Outbound to Relay"
REMOTE = "10.0.0.5:587"


def lines(
    session: str, events: list[tuple[str, str, str]], connector: str = CONNECTOR
) -> list[str]:
    out = []
    for number, (kind, data, context) in enumerate(events):
        local = "" if number == 0 else "10.0.0.1:51000"
        quoted = f'"{data}"' if "," in data else data
        out.append(
            f"2026-12-01T09:00:{number:02d}.000Z,{connector},{session},{number},{local},"
            f"{REMOTE},{kind},{quoted},{context}"
        )
    return out


def ehlo(*extensions: str) -> list[tuple[str, str, str]]:
    replies = ["relay.example.net Hello", *extensions]
    out = [(">", "EHLO ex01.contoso.com", "")]
    for index, text in enumerate(replies):
        sep = " " if index == len(replies) - 1 else "-"
        out.append(("<", f"250{sep}{text}", ""))
    return out


START = [
    ("*", "", "attempting to connect"),
    ("+", "", ""),
    ("<", "220 relay.example.net ESMTP", ""),
]
TLS = [(">", "STARTTLS", ""), ("<", "220 2.0.0 Ready to start TLS", "")]


def explain(text: list[str], connector: str | None = CONNECTOR) -> list[sendlog.Session]:
    return sendlog.sessions(sendlog.parse(text), connector)


def test_a_535_on_auth_login_is_a_refused_login() -> None:
    events = [
        *START,
        *ehlo("STARTTLS", "8BITMIME"),
        *TLS,
        *ehlo("AUTH LOGIN", "8BITMIME"),
        (">", "AUTH LOGIN", ""),
        ("<", "334 VXNlcm5hbWU6", ""),
        (">", "****", ""),
        ("<", "334 UGFzc3dvcmQ6", ""),
        (">", "****", ""),
        ("<", "535 5.7.3 Authentication unsuccessful", ""),
        ("-", "", "Local"),
    ]
    (session,) = explain(HEADER + lines("08D6A8D416004F77", events))
    assert session.outcome is Outcome.AUTH_REJECTED
    assert session.failed_reply == "535 5.7.3 Authentication unsuccessful"
    assert session.tls and session.auth_offered == ("LOGIN",)
    assert "refused the login" in session.explanation() and REMOTE in session.explanation()


def test_no_auth_login_after_starttls() -> None:
    events = [*START, *ehlo("STARTTLS"), *TLS, *ehlo("8BITMIME", "AUTH PLAIN"), ("-", "", "Local")]
    (session,) = explain(HEADER + lines("S1", events))
    assert session.outcome is Outcome.AUTH_NOT_OFFERED
    assert session.auth_offered == ("PLAIN",)
    assert "offered no AUTH LOGIN after STARTTLS" in session.explanation()
    assert "8BITMIME, AUTH PLAIN" in session.explanation()


def test_no_starttls_offered() -> None:
    (session,) = explain(HEADER + lines("S2", [*START, *ehlo("8BITMIME"), ("-", "", "Local")]))
    assert session.outcome is Outcome.STARTTLS_MISSING
    assert "did not offer STARTTLS" in session.explanation()


def test_a_one_line_ehlo_answer_offers_nothing() -> None:
    events = [*START, (">", "EHLO ex01", ""), ("<", "250 relay Hello", ""), ("-", "", "Local")]
    (session,) = explain(lines("S3", events))  # no header: the default field order
    assert session.offered == () and session.outcome is Outcome.STARTTLS_MISSING


def test_connect_failed() -> None:
    events = [
        ("*", "", "attempting to connect"),
        ("*", "", "Failed to connect. Winsock error code: 10061"),
    ]
    (session,) = explain(HEADER + lines("S4", events))
    assert session.outcome is Outcome.CONNECT_FAILED
    assert "10061" in session.explanation()


def test_delivered_and_rejected_sessions_of_two_connectors() -> None:
    good = [
        *START,
        *ehlo("AUTH LOGIN"),
        (">", "AUTH LOGIN", ""),
        ("<", "235 2.7.0 Authentication successful", ""),
        (">", "MAIL FROM:<a@contoso.com>", ""),
        ("<", "250 2.1.0 Sender OK", ""),
        ("-", "", "Local"),
    ]
    refused = [*START, *ehlo("AUTH LOGIN"), (">", "MAIL FROM:<a@contoso.com>", "")]
    refused.append(("<", "530 5.7.0 Authentication required", ""))
    text = HEADER + lines("A", good) + lines("B", refused, connector="Other")
    (first,) = explain(text)
    assert first.outcome is Outcome.DELIVERED
    (other,) = explain(text, "other")
    assert other.outcome is Outcome.REJECTED and other.failed_command == "MAIL"
    assert len(explain(text, None)) == 2


def test_reordered_fields_header_is_followed() -> None:
    text = [
        "#Fields: session-id,event,data,sequence-number,connector-id",
        f"X,+,,0,{CONNECTOR}",
        f"X,<,220 hi,1,{CONNECTOR}",
        f"X,>,EHLO me,2,{CONNECTOR}",
        f"X,<,250-hi,3,{CONNECTOR}",
        f"X,<,250 STARTTLS,4,{CONNECTOR}",
    ]
    (session,) = explain(text)
    assert session.starttls_offered and session.offered == ("STARTTLS",)


def test_lines_out_of_order_are_sorted_by_sequence() -> None:
    events = lines("S5", [*START, *ehlo("8BITMIME"), ("-", "", "Local")])
    (session,) = explain(HEADER + list(reversed(events)))
    assert session.outcome is Outcome.STARTTLS_MISSING and session.banner.startswith("220")


# --- hostile input -------------------------------------------------------------------------------


def test_garbage_lines_are_counted_not_read() -> None:
    text = [
        *HEADER,
        "not,a,log,line",
        '"unbalanced quote,,,,,,,,',
        "2026,Outbound to Relay,S,notanumber,,,+,,",
        "2026,Outbound to Relay,S,1,,,?,,",
        "",
        "\x00\x01\x02",
    ]
    parsed = sendlog.parse(text)
    assert parsed.events == []
    assert parsed.problems == ["5 line(s) not read (not a protocol-log event)"]


def test_an_overlong_line_is_skipped() -> None:
    huge = f"2026,{CONNECTOR},S,0,,,+," + "A" * (sendlog.MAX_LINE + 1) + ","
    parsed = sendlog.parse([*HEADER, huge, *lines("S", START)])
    assert len(parsed.events) == len(START) and parsed.problems


def test_line_count_is_bounded() -> None:
    def endless() -> object:
        number = 0
        while True:
            yield f"2026,{CONNECTOR},S{number % 7},{number},,,>,x,"
            number += 1

    parsed = sendlog.parse(endless())  # type: ignore[arg-type]
    assert len(parsed.events) == sendlog.MAX_LINES
    assert parsed.problems == [f"more than {sendlog.MAX_LINES} lines: the rest was not read"]


def test_sessions_and_events_per_session_are_bounded() -> None:
    many = [f"2026,{CONNECTOR},S{n},0,,,+,," for n in range(sendlog.MAX_SESSIONS + 50)]
    found = explain(many)
    assert len(found) == sendlog.MAX_SESSIONS
    assert found[-1].session_id == f"S{sendlog.MAX_SESSIONS + 49}"  # the newest are kept
    long_session = [f"2026,{CONNECTOR},S,{n},,,>,NOOP," for n in range(sendlog.MAX_EVENTS * 3)]
    (session,) = explain([f"2026,{CONNECTOR},S,0,,,+,,", *long_session])
    assert session.outcome is Outcome.INCOMPLETE


def test_a_hostile_fields_header_cannot_break_the_reader() -> None:
    text = ["#Fields: " + ",".join(["x"] * 2_000), f"2026,{CONNECTOR},S,0,,,+,,"]
    assert sendlog.parse(text).events == []  # the named columns are missing: not read


def test_exchange_server_authentication_against_a_relay() -> None:
    """ExchangeServer needs Exchange's own extensions (exchange-notes.md: X-ANONYMOUSTLS /
    X-EXPS); a relay that offers only AUTH LOGIN gets no login at all."""
    events = [*START, *ehlo("STARTTLS"), *TLS, *ehlo("AUTH LOGIN"), ("-", "", "Local")]
    text = HEADER + lines("S6", events)
    (session,) = sendlog.sessions(sendlog.parse(text), CONNECTOR, "ExchangeServer")
    assert session.outcome is Outcome.EXCHANGE_AUTH_NOT_OFFERED
    assert "works only with Exchange servers" in session.explanation()
    (plain,) = sendlog.sessions(sendlog.parse(text), CONNECTOR, "BasicAuth")
    assert plain.outcome is Outcome.INCOMPLETE
