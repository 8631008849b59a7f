"""Event 2016 and 2002 records from what an admin has: pasted Event Viewer text, a wevtutil
XML export, or Event Viewer's "Save as CSV".

Exchange writes the message body in English whatever the Windows language; the text around it
(field labels, dates) may be localized, so records are found by their message and their labels
are matched in several languages. Records that look like 2016/2002 but cannot be read, and
other events, are returned with ``problems`` instead of being dropped.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from remediate.core.errors import UsageError
from remediate.core.files import decode_text, read_bounded
from remediate.diagnose.eventmatch import Match, Template
from remediate.diagnose.evtxfile import MAGIC, MAX_EVTX_BYTES, evtx_as_xml

HANDLED = (2016, 2002)

# The message bodies Exchange writes (%1..%5 of 2016, %1..%2 of 2002), matched by the
# hand-written linear scanner in ``remediate.diagnose.eventmatch`` (a backtracking regex with lazy
# groups took time quadratic in the text).
MAX_CONNECTOR_NAME = 256
MESSAGE_2016 = Template(
    (
        "An authentication credential initialization error ",
        "status",
        " occurred with Send connector ",
        "connector",
        ". The authentication mechanism used was ",
        "mechanism",
        ". The name of the server that we were trying to authenticate to was ",
        "target",
        ". This server was using the name ",
        "user",
    ),
    last_ends_at_sentence=True,
    limits={"connector": MAX_CONNECTOR_NAME},
    forbid={"connector": "Send connector "},
)
MESSAGE_2002 = Template(
    (
        "Send connector ",
        "connector",
        ": an error occurred while connecting to ",
        "endpoint",
    ),
    last_ends_at_sentence=False,
    limits={"connector": MAX_CONNECTOR_NAME},
    forbid={"connector": "Send connector "},
)
# How much of an events file (or stdin) is read: Application-log exports of a few days are
# far below it; past it the reader stops with a clear message instead of eating memory.
MAX_INPUT_BYTES = 32 * 1024 * 1024
# Labels of Event Viewer's "Copy details as text", per Windows display language. Western
# ones as before; zh-CN as issue 17 lists them from Chinese Windows (日志名称, 来源, 日期,
# 事件 ID, 计算机); ja from sdk-ltd.com/ict/eventlog03.html (ソース, イベントID, コンピュータ,
# 日付と時刻) and Microsoft's ja-jp Event Viewer help (forsenergy.com/ja-jp/eventviewer:
# イベント ID); ko from Microsoft's ko-kr Event Viewer help (forsenergy.com/ko-kr/eventviewer:
# 원본, 이벤트 ID, 수준); zh-TW from Microsoft's zh-TW terms (learn.microsoft.com/zh-tw:
# 事件記錄檔, 事件識別碼, 電腦). No pasted ja, ko or zh-TW event was found, so their first
# labels (ログの名前, 로그 이름, 記錄檔名稱) and 日付 / 날짜 / 電腦 are those terms, not a
# capture. Event Viewer writes an ASCII colon; a full-width one (：) is accepted too.
_COLON = r"[ \t]*[:\uff1a]"
_FIRST_LABEL = re.compile(
    r"(?im)^[ \t]*(?:Log Name|Protokollname|Nom du journal|Nome registro|Nombre de registro|"
    r"Nome do Log|日志名称|記錄檔名稱|ログの名前|로그 이름)" + _COLON
)
_EVENT_ID = re.compile(
    r"(?im)^[ \t]*(?:Event ID|EventID|Ereignis-ID|ID de l['’]événement|ID evento|"
    r"Id\. del evento|Identificação do Evento|事件 ?ID|事件識別碼|イベント ?ID|이벤트 ?ID)"
    + _COLON
    + r"[ \t]*(\d+)"
)
_DATE_LABEL = re.compile(
    r"(?im)^[ \t]*(?:Date|Datum|Date et heure|Data|Fecha|Date and Time|日期|日付|날짜)"
    + _COLON
    + r"([^\n]*)"
)
_COMPUTER = re.compile(
    r"(?im)^[ \t]*(?:Computer|Computador|Ordinateur|Computer name|计算机|電腦|"
    r"コンピューター|コンピュータ|컴퓨터)" + _COLON + r"\s*(\S+)"
)
_SOURCE_LABEL = re.compile(
    r"(?im)^[ \t]*(?:Source|Quelle|Origine|Origen|Fonte|来源|來源|ソース|원본)"
    + _COLON
    + r"[ \t]*([^\s]+)"
)
# Dates year first, as zh-CN/zh-TW/ja/ko Windows write them: "2026/12/1 9:30:12",
# "2026-12-01 09:30:12", "2026/12/1 下午 9:30:12" (zh), "2026-12-01 오전 9:30:12" (ko, as in
# the sysnet.pe.kr paste), "2026. 12. 1. 오후 9:30:12" (ko long form), with the morning /
# afternoon word before or after the time. Anchored, no nested repetition: linear.
_YMD = re.compile(
    r"(\d{4})[/.\-年] ?(\d{1,2})[/.\-月] ?(\d{1,2})[.日]?[ \t]+"
    r"(?:(上午|下午|午前|午後|오전|오후|AM|PM)[ \t]*)?"
    r"(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?"
    r"(?:[ \t]*(上午|下午|午前|午後|오전|오후|AM|PM))?",
    re.I,
)
_AFTERNOON = {"下午", "午後", "오후", "PM"}
_XML_NS = "{http://schemas.microsoft.com/win/2004/08/events/event}"
_DATE_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M:%S",
    "%d.%m.%Y %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
)


@dataclass
class EventRecord:
    event_id: int | None
    connector: str | None = None
    status: str | None = None  # 2016 %1
    mechanism: str | None = None  # 2016 %3, the transport's name (Login, Gssapi, ...)
    target_server: str | None = None  # 2016 %4 without SMTPSVC/
    user: str | None = None  # 2016 %5
    remote_endpoint: str | None = None  # 2002 %2 (IP:port)
    time: datetime | None = None
    computer: str | None = None
    provider: str | None = None  # the event's Source (MSExchangeTransport)
    source: str = ""  # where it came from: file and line or record number
    raw: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.event_id in HANDLED

    def key(self) -> tuple[object, ...]:
        """What makes two records repeats of one another."""
        return (
            self.event_id,
            self.connector,
            self.status,
            self.mechanism,
            self.target_server,
            self.user,
            self.remote_endpoint,
        )


@dataclass
class EventGroup:
    record: EventRecord
    count: int
    first: datetime | None
    last: datetime | None
    sources: list[str]


def group(records: list[EventRecord]) -> list[EventGroup]:
    """Repeats of one readable record folded together, in order of first appearance;
    unreadable records stay one group each."""
    groups: dict[object, EventGroup] = {}
    for index, record in enumerate(records):
        key: object = record.key() if record.ok else ("problem", index)
        found = groups.get(key)
        if found is None:
            groups[key] = EventGroup(record, 1, record.time, record.time, [record.source])
            continue
        found.count += 1
        found.sources.append(record.source)
        if record.time is not None:
            found.first = min(t for t in (found.first, record.time) if t is not None)
            found.last = max(t for t in (found.last, record.time) if t is not None)
    return list(groups.values())


# --- message bodies ---------------------------------------------------------------------------


def _from_message(text: str, event_id: int | None) -> EventRecord | None:
    flat = " ".join(text.split())
    if event_id in (None, 2016):
        found = MESSAGE_2016.search(flat)
        if found is not None:
            return _record_2016(found)
    if event_id in (None, 2002):
        found = MESSAGE_2002.search(flat)
        if found is not None:
            return _record_2002(found)
    return None


def _record_2016(found: Match) -> EventRecord:
    target = found["target"].strip()
    return EventRecord(
        event_id=2016,
        connector=found["connector"].strip(),
        status=found["status"].strip(),
        mechanism=found["mechanism"].strip(),
        target_server=target.removeprefix("SMTPSVC/").removeprefix("smtpsvc/"),
        user=found["user"].strip(),
        raw=found.text,
    )


def _record_2002(found: Match) -> EventRecord:
    return EventRecord(
        event_id=2002,
        connector=found["connector"].strip(),
        remote_endpoint=found["endpoint"].strip().rstrip("."),
        raw=found.text,
    )


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    cleaned = text.strip().replace("\u200e", "").replace("\u200f", "")
    try:
        moment = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    except ValueError:
        moment = None
        trimmed = re.sub(r"(:\d\d)\.\d+", r"\1", cleaned)  # fractions of a second
        for fmt in _DATE_FORMATS:
            try:
                moment = datetime.strptime(trimmed, fmt)
                break
            except ValueError:
                continue
    if moment is None:
        moment = _parse_ymd(cleaned)
    if moment is not None and moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _parse_ymd(text: str) -> datetime | None:
    """A year-first date with a 12-hour marker (上午/下午, 午前/午後, 오전/오후) or 24 hours."""
    found = _YMD.fullmatch(text)
    if found is None:
        return None
    year, month, day, before, hour, minute, second, after = found.groups()
    marker = (before or after or "").upper()
    hours = int(hour)
    if marker:
        if not 1 <= hours <= 12:
            return None
        hours = hours % 12 + (12 if marker in _AFTERNOON else 0)
    try:
        return datetime(int(year), int(month), int(day), hours, int(minute), int(second or 0))
    except ValueError:
        return None


# --- pasted text ------------------------------------------------------------------------------


def parse_text(text: str, source: str = "pasted text") -> list[EventRecord]:
    """Records in Event Viewer text ("Copy details as text"), or bare message bodies."""
    starts = [m.start() for m in _FIRST_LABEL.finditer(text)]
    if not starts:
        return _bare_messages(text, source)
    records: list[EventRecord] = []
    bounds = [*starts, len(text)]
    if text[: starts[0]].strip():
        records += _bare_messages(text[: starts[0]], source)
    for number, (start, end) in enumerate(itertools.pairwise(bounds), start=1):
        records.append(_block(text[start:end], f"{source}, record {number}"))
    return records


def _bare_messages(text: str, source: str) -> list[EventRecord]:
    flat = " ".join(text.split())
    found = [(m.start, _record_2016(m)) for m in MESSAGE_2016.finditer(flat)]
    found += [(m.start, _record_2002(m)) for m in MESSAGE_2002.finditer(flat)]
    records = []
    for number, (_, record) in enumerate(sorted(found, key=lambda f: f[0]), start=1):
        record.source = f"{source}, message {number}"
        records.append(record)
    if not records and text.strip():
        records.append(
            EventRecord(
                None,
                source=source,
                raw=text.strip()[:300],
                problems=["no event 2016 or 2002 message found in this text"],
            )
        )
    return records


def _block(block: str, source: str) -> EventRecord:
    id_match = _EVENT_ID.search(block)
    event_id = int(id_match.group(1)) if id_match else None
    record = _from_message(block, event_id)
    if record is None:
        record = EventRecord(event_id, source=source, raw=block.strip()[:300])
        if event_id in HANDLED:
            record.problems.append(
                f"event {event_id}: the message text is not the one Exchange writes "
                "(truncated or edited?)"
            )
        elif event_id is None:
            record.problems.append("no event ID and no event 2016 or 2002 message")
        else:
            record.problems.append(f"event {event_id} is not one remediate handles (2016, 2002)")
    date = _DATE_LABEL.search(block)
    record.time = _parse_time(date.group(1).strip(" \t\r")) if date else None
    computer = _COMPUTER.search(block)
    record.computer = computer.group(1) if computer else None
    provider = _SOURCE_LABEL.search(block)
    record.provider = provider.group(1) if provider else None
    if record.provider and record.provider != "MSExchangeTransport" and not record.problems:
        record.problems.append(f"source {record.provider}, not MSExchangeTransport")
    record.source = source
    return record


# --- wevtutil XML -----------------------------------------------------------------------------


_EVENT_START = re.compile(r"<Event[\s>]")
_EVENT_END = "</Event>"
_DTD = re.compile(r"<!(?:DOCTYPE|ENTITY)", re.I)


def parse_xml(text: str, source: str = "XML") -> list[EventRecord]:
    """wevtutil's /f:xml output: <Event> elements one after another (no root element), or
    Event Viewer's "Save as XML" (the same inside <Events>).

    Each <Event>...</Event> is cut out by one forward scan (linear time) and parsed on its
    own, so one broken event is reported next to the good ones. A DTD is refused: an export
    has none, and entity definitions are how an XML file explodes in memory.
    """
    dtd = _DTD.search(text)
    if dtd is not None:
        line = text.count("\n", 0, dtd.start()) + 1
        raise UsageError(
            f"{source}:{line}: a DTD or entity definition (<!DOCTYPE/<!ENTITY); an event "
            "export has none, so the file is not read"
        )
    chunks = []
    position = 0
    while (start := _EVENT_START.search(text, position)) is not None:
        end = text.find(_EVENT_END, start.end())
        if end < 0:
            break
        position = end + len(_EVENT_END)
        chunks.append(text[start.start() : position])
    if not chunks:
        raise UsageError(f"{source}: no <Event> elements (expected wevtutil qe ... /f:xml output)")
    return [_xml_event(chunk, f"{source}, event {n}") for n, chunk in enumerate(chunks, start=1)]


def _xml_event(chunk: str, source: str) -> EventRecord:
    try:
        event = _parse_element(chunk)
    except ET.ParseError as exc:
        return EventRecord(None, source=source, raw=chunk[:300], problems=[f"broken XML: {exc}"])

    def find(path: str) -> ET.Element | None:
        return event.find(path.replace("{ns}", _XML_NS))

    id_el = find("{ns}System/{ns}EventID")
    id_text = id_el.text if id_el is not None else None
    event_id = int(id_text) if id_text is not None and id_text.isdigit() else None
    provider = find("{ns}System/{ns}Provider")
    created = find("{ns}System/{ns}TimeCreated")
    computer = find("{ns}System/{ns}Computer")
    data = [d.text or "" for d in event.iter(f"{_XML_NS}Data")]
    message = find("{ns}RenderingInfo/{ns}Message")
    record = None
    if message is not None and message.text:
        record = _from_message(message.text, event_id)
    if record is None:
        record = _from_data(event_id, data)
    if record is None:
        record = EventRecord(event_id, raw=chunk[:300])
        if event_id in HANDLED:
            record.problems.append(
                f"event {event_id} with {len(data)} insertion string(s), "
                f"expected {5 if event_id == 2016 else 2}"
            )
        else:
            record.problems.append(f"event {event_id} is not one remediate handles (2016, 2002)")
    name = provider.get("Name") if provider is not None else None
    record.provider = name
    if name and name != "MSExchangeTransport" and not record.problems:
        record.problems.append(f"source {name}, not MSExchangeTransport")
    record.time = _parse_time(created.get("SystemTime") if created is not None else None)
    record.computer = computer.text if computer is not None else None
    record.source = source
    return record


def _parse_element(chunk: str) -> ET.Element:
    """One <Event> through the streaming parser (no DTD reaches it, so no entities)."""
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("end",))
    parser.feed(chunk)
    parser.close()
    root = None
    for item in parser.read_events():
        element = item[-1]  # with events=("end",) every item is ("end", element)
        if isinstance(element, ET.Element):
            root = element  # the root's end comes last
    if root is None:
        raise ET.ParseError("no element")
    return root


def _from_data(event_id: int | None, data: list[str]) -> EventRecord | None:
    if event_id == 2016 and len(data) >= 5:
        status, connector, mechanism, target, user = (d.strip() for d in data[:5])
        raw = (
            f"An authentication credential initialization error {status} occurred with Send "
            f"connector {connector}. The authentication mechanism used was {mechanism}. The "
            f"name of the server that we were trying to authenticate to was {target}. This "
            f"server was using the name {user}."
        )
        return EventRecord(
            2016,
            connector=connector,
            status=status,
            mechanism=mechanism,
            target_server=target.removeprefix("SMTPSVC/"),
            user=user,
            raw=raw,
        )
    if event_id == 2002 and len(data) >= 2:
        connector, endpoint = data[0].strip(), data[1].strip()
        raw = f"Send connector {connector}: an error occurred while connecting to {endpoint}."
        return EventRecord(2002, connector=connector, remote_endpoint=endpoint, raw=raw)
    return None


# --- Event Viewer CSV -------------------------------------------------------------------------


def parse_csv(text: str, source: str = "CSV") -> list[EventRecord]:
    """Event Viewer's "Save as CSV": Level, Date and Time, Source, Event ID, Task Category,
    then the message (column titles localized, so columns are taken by position)."""
    rows = list(csv.reader(io.StringIO(text)))
    records = []
    for line, row in enumerate(rows, start=1):
        if not any(cell.strip() for cell in row):
            continue
        if line == 1 and (len(row) < 4 or not row[3].strip().isdigit()):
            continue  # the header row
        where = f"{source}, line {line}"
        if len(row) < 6 or not row[3].strip().isdigit():
            records.append(
                EventRecord(
                    None,
                    source=where,
                    raw=",".join(row)[:300],
                    problems=[
                        "not an Event Viewer CSV row (Level, Date and Time, Source, "
                        "Event ID, Task Category, message)"
                    ],
                )
            )
            continue
        event_id = int(row[3])
        record = _from_message(",".join(row[5:]), event_id)
        if record is None:
            record = EventRecord(event_id, raw=",".join(row[5:])[:300])
            record.problems.append(
                f"event {event_id}: the message text is not the one Exchange writes"
                if event_id in HANDLED
                else f"event {event_id} is not one remediate handles (2016, 2002)"
            )
        record.time = _parse_time(row[1])
        record.source = where
        records.append(record)
    return records


# --- files ------------------------------------------------------------------------------------


def parse_any(text: str, source: str) -> list[EventRecord]:
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("<"):
        return parse_xml(stripped, source)
    first = stripped.splitlines()[0] if stripped else ""
    if first.count(",") >= 4 and "Log Name" not in first and ":" not in first.split(",")[0]:
        return parse_csv(stripped, source)
    return parse_text(text, source)


def parse_file(path: Path) -> list[EventRecord]:
    """A .evtx or .xml (Event Viewer, wevtutil), .csv (Event Viewer) or text file; the
    content decides."""
    return parse_any(read_event_file(Path(path), str(path)), str(path))


def read_event_file(path: Path, what: str) -> str:
    """An events file as text: at most MAX_INPUT_BYTES, decoded by ``files.decode_text``
    (UTF-16 by its BOM or NUL pattern, else UTF-8, else Windows-1252); an .evtx (by its
    signature, whatever its name) as the XML of its MSExchangeTransport events.
    ``diagnose`` and ``fix --event-file`` both read through here."""
    if _starts_with(path, MAGIC):
        raw = read_bounded(path, MAX_EVTX_BYTES, what)
        return evtx_as_xml(raw, what, MAX_INPUT_BYTES)
    raw = read_bounded(path, MAX_INPUT_BYTES, what)
    return decode_text(raw)


def _starts_with(path: Path, signature: bytes) -> bool:
    """Whether the file begins with ``signature`` (False when it cannot be opened: the read
    that follows reports why)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(signature)) == signature
    except OSError:
        return False


def read_event_stream(stream: TextIO, what: str = "stdin") -> str:
    """Pasted events from a text stream, bounded like a file."""
    text = stream.read(MAX_INPUT_BYTES + 1)
    if len(text) > MAX_INPUT_BYTES:
        raise UsageError(
            f"{what}: more than {MAX_INPUT_BYTES // (1024 * 1024)} MiB of event text; "
            "export only the MSExchangeTransport events of the days in question"
        )
    return text
