"""Event intake from pasted text (English, German, French labels), wevtutil XML and Event
Viewer CSV: fields, repeats, and broken or foreign records reported, not dropped."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from remediate.core.errors import UsageError
from remediate.diagnose.events import group, parse_file, parse_text, parse_xml

FIXTURES = Path(__file__).parent.parent / "fixtures" / "events"


def ok(records):
    return [r for r in records if r.ok]


def bad(records):
    return [r for r in records if not r.ok]


def check_2016(record) -> None:
    assert record.event_id == 2016
    assert record.connector == "Outbound to Relay"
    assert record.status == "Unsupported"
    assert record.mechanism == "Login"
    assert record.target_server == "relay.contoso.lab"
    assert record.user == "EX01$"


def check_2002(record) -> None:
    assert record.event_id == 2002
    assert record.connector == "Outbound to Partner"
    assert record.remote_endpoint == "192.0.2.25:2525"


def test_wevtutil_xml_export() -> None:
    records = parse_file(FIXTURES / "export.xml")
    assert len(records) == 6
    good = ok(records)
    assert [r.event_id for r in good] == [2016, 2016, 2002, 2016]
    check_2016(good[0])
    check_2002(good[2])
    assert good[0].time == datetime(2026, 11, 22, 17, 1, 2, 123456)
    assert good[0].computer == "EX01.contoso.lab"
    problems = bad(records)
    assert [r.event_id for r in problems] == [1035, 2016]
    assert "not one remediate handles" in problems[0].problems[0]
    assert "3 insertion string(s), expected 5" in problems[1].problems[0]
    assert problems[1].source.endswith("event 6")


def test_broken_xml_is_reported_next_to_the_good_events() -> None:
    records = parse_file(FIXTURES / "export-broken.xml")
    assert [r.ok for r in records] == [True, False, True]
    assert records[1].problems[0].startswith("broken XML")


def test_not_an_export_at_all() -> None:
    with pytest.raises(UsageError, match="no <Event> elements"):
        parse_xml("<html></html>", "page.xml")


def test_event_viewer_csv() -> None:
    records = parse_file(FIXTURES / "events.csv")
    good = ok(records)
    assert [r.event_id for r in good] == [2016, 2002, 2016]
    check_2016(good[0])
    check_2002(good[1])
    assert good[0].time == datetime(2026, 11, 22, 18, 1, 2)
    problems = bad(records)
    assert len(problems) == 2
    assert "message text is not the one Exchange writes" in problems[0].problems[0]
    assert problems[1].source.endswith("line 6")


def test_localized_csv_with_a_byte_order_mark() -> None:
    records = parse_file(FIXTURES / "events-de.csv")
    assert [r.event_id for r in ok(records)] == [2016, 2002]
    assert records[0].time == datetime(2026, 11, 22, 18, 1, 2)


@pytest.mark.parametrize(
    ("name", "ids", "broken"),
    [
        ("pasted-en.txt", [2016, 2016, 2002], 0),
        ("pasted-de.txt", [2016, 2002], 1),
        ("pasted-fr.txt", [2002], 1),
    ],
)
def test_pasted_event_viewer_text(name: str, ids: list[int], broken: int) -> None:
    records = parse_file(FIXTURES / name)
    assert [r.event_id for r in ok(records)] == ids
    assert len(bad(records)) == broken
    for record in ok(records):
        (check_2016 if record.event_id == 2016 else check_2002)(record)
        assert record.time is not None and record.time.day == 22
        assert record.computer == "EX01.contoso.lab"


def test_bare_messages_without_any_labels() -> None:
    text = (
        "copied from the console: Send connector Outbound to Partner: an error occurred while "
        "connecting to [2001:db8::25]:25. and then An authentication credential initialization "
        "error TLS1_0NotSupported occurred with Send connector To O365. The authentication "
        "mechanism used was Login. The name of the server that we were trying to authenticate to "
        "was SMTPSVC/smtp.office365.com. This server was using the name relay@contoso.com."
    )
    first, second = parse_text(text)
    assert (first.event_id, first.remote_endpoint) == (2002, "[2001:db8::25]:25")
    assert (second.connector, second.status, second.user) == (
        "To O365",
        "TLS1_0NotSupported",
        "relay@contoso.com",
    )
    assert second.target_server == "smtp.office365.com"


def test_text_with_no_event_is_reported() -> None:
    (record,) = parse_text("hello, nothing to see")
    assert not record.ok
    assert "no event 2016 or 2002 message" in record.problems[0]


def test_repeats_are_grouped_with_first_and_last_time() -> None:
    groups = group(parse_file(FIXTURES / "export.xml"))
    readable = [g for g in groups if g.record.ok]
    assert [(g.record.event_id, g.count) for g in readable] == [(2016, 3), (2002, 1)]
    assert readable[0].first == datetime(2026, 11, 22, 17, 1, 2, 123456)
    assert readable[0].last == datetime(2026, 11, 22, 17, 11, 2)
    assert len(groups) == 4  # the two unreadable records stay on their own


def test_unreadable_file() -> None:
    with pytest.raises(UsageError, match="cannot be read"):
        parse_file(FIXTURES / "missing.xml")


# East Asian Event Viewer text: labels and dates as zh-CN, zh-TW, ja and ko Windows write them
# (sources named beside the label patterns in remediate/diagnose/events.py; the zh-CN seed page is
# /work/shared/seeds' Chinese MSExchangeTransport 2016 page). The message body stays English:
# Exchange writes it so whatever the display language.
@pytest.mark.parametrize(
    ("name", "connector"),
    [
        ("pasted-zh-cn.txt", "发往中继 Relay"),
        ("pasted-zh-tw.txt", "發往中繼 Relay"),
        ("pasted-ja.txt", "中継リレー Relay"),
        ("pasted-ko.txt", "한국 릴레이 Relay"),
    ],
)
def test_pasted_east_asian_event_viewer_text(name: str, connector: str) -> None:
    records = parse_file(FIXTURES / name)
    assert [r.event_id for r in records] == [2016, 2002]
    assert not bad(records)
    r2016, r2002 = records
    assert (r2016.connector, r2016.status, r2016.mechanism) == (connector, "Unsupported", "Login")
    assert (r2016.target_server, r2016.user) == ("relay.contoso.lab", "EX01$")
    assert (r2002.connector, r2002.remote_endpoint) == (connector, "192.0.2.25:2525")
    # 18:01:02 and 18:05:09 in each file, written 24-hour or with 下午 / 오후
    assert [r.time for r in records] == [
        datetime(2026, 11, 22, 18, 1, 2),
        datetime(2026, 11, 22, 18, 5, 9),
    ]
    assert {r.computer for r in records} == {"EX01.contoso.lab"}
    assert {r.provider for r in records} == {"MSExchangeTransport"}
    assert [r.source for r in records] == [f"{FIXTURES / name}, record {n}" for n in (1, 2)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026/12/1 9:30:12", datetime(2026, 12, 1, 9, 30, 12)),  # zh-CN short date
        ("2026-12-01 09:30:12", datetime(2026, 12, 1, 9, 30, 12)),
        ("2026/12/1 下午 9:30:12", datetime(2026, 12, 1, 21, 30, 12)),  # zh 12-hour
        ("2026/12/1 上午 12:05:00", datetime(2026, 12, 1, 0, 5, 0)),
        ("2026/12/01 9:30:12", datetime(2026, 12, 1, 9, 30, 12)),  # ja
        ("2026/12/01 午後 9:30:12", datetime(2026, 12, 1, 21, 30, 12)),
        ("2026-12-01 오전 9:30:12", datetime(2026, 12, 1, 9, 30, 12)),  # ko
        ("2026-12-01 오후 12:30:12", datetime(2026, 12, 1, 12, 30, 12)),
        ("2026. 12. 1. 오후 9:30:12", datetime(2026, 12, 1, 21, 30, 12)),
        ("2026-12-01 下午 13:30:12", None),  # a 12-hour marker with hour 13: not a date
        ("2026/13/01 9:30:12", None),
    ],
)
def test_year_first_dates(text: str, expected: datetime | None) -> None:
    block = f"日志名称: Application\n日期: {text}\n事件 ID: 4\n"
    assert parse_text(block)[0].time == expected


def test_a_pasted_event_from_another_source_is_reported() -> None:
    text = (FIXTURES / "pasted-zh-cn.txt").read_text(encoding="utf-8")
    records = parse_text(text.replace("MSExchangeTransport", "MSExchangeFrontEndTransport", 1))
    assert records[0].problems == ["source MSExchangeFrontEndTransport, not MSExchangeTransport"]
    assert records[1].ok
