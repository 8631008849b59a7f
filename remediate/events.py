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

from remediate.errors import UsageError

HANDLED = (2016, 2002)

MESSAGE_2016 = re.compile(
    r"An authentication credential initialization error (?P<status>.+?) occurred with Send "
    r"connector (?P<connector>(?:(?!Send connector ).){1,256}?)\. "
    r"The authentication mechanism used was (?P<mechanism>.+?)\. "
    r"The name of the server that we were trying to authenticate to was (?P<target>.+?)\. "
    r"This server was using the name (?P<user>.+?)\.(?=\s|$)",
    re.S,
)
MESSAGE_2002 = re.compile(
    r"Send connector (?P<connector>(?:(?!Send connector ).){1,256}?): "
    r"an error occurred while connecting to "
    r"(?P<endpoint>\S+?)\.?(?=\s|$)",
    re.S,
)
_FIRST_LABEL = re.compile(
    r"(?im)^[ \t]*(?:Log Name|Protokollname|Nom du journal|Nome registro|Nombre de registro|"
    r"Nome do Log)[ \t]*:"
)
_EVENT_ID = re.compile(
    r"(?im)^[ \t]*(?:Event ID|EventID|Ereignis-ID|ID de l['’]événement|ID evento|"
    r"Id\. del evento|Identificação do Evento)[ \t]*:[ \t]*(\d+)"
)
_DATE_LABEL = re.compile(
    r"(?im)^[ \t]*(?:Date|Datum|Date et heure|Data|Fecha|Date and Time)[ \t]*:[ \t]*(.+?)[ \t]*$"
)
_COMPUTER = re.compile(
    r"(?im)^[ \t]*(?:Computer|Computador|Ordinateur|Computer name)[ \t]*:\s*(\S+)"
)
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
    found = MESSAGE_2016.search(flat)
    if found and event_id in (None, 2016):
        target = found["target"].strip()
        return EventRecord(
            event_id=2016,
            connector=found["connector"].strip(),
            status=found["status"].strip(),
            mechanism=found["mechanism"].strip(),
            target_server=target.removeprefix("SMTPSVC/").removeprefix("smtpsvc/"),
            user=found["user"].strip(),
            raw=found.group(0),
        )
    found = MESSAGE_2002.search(flat)
    if found and event_id in (None, 2002):
        return EventRecord(
            event_id=2002,
            connector=found["connector"].strip(),
            remote_endpoint=found["endpoint"].strip().rstrip("."),
            raw=found.group(0),
        )
    return None


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
    if moment is not None and moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


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
    found = [(m.start(), m) for m in MESSAGE_2016.finditer(flat)]
    found += [(m.start(), m) for m in MESSAGE_2002.finditer(flat)]
    records = []
    for number, (_, match) in enumerate(sorted(found, key=lambda f: f[0]), start=1):
        record = _from_message(match.group(0), None)
        assert record is not None
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
    record.time = _parse_time(date.group(1)) if date else None
    computer = _COMPUTER.search(block)
    record.computer = computer.group(1) if computer else None
    record.source = source
    return record


# --- wevtutil XML -----------------------------------------------------------------------------


def parse_xml(text: str, source: str = "XML") -> list[EventRecord]:
    """wevtutil's /f:xml output: <Event> elements one after another (no root element)."""
    chunks = re.findall(r"<Event[\s>].*?</Event>", text, re.S)
    if not chunks:
        raise UsageError(f"{source}: no <Event> elements (expected wevtutil qe ... /f:xml output)")
    return [_xml_event(chunk, f"{source}, event {n}") for n, chunk in enumerate(chunks, start=1)]


def _xml_event(chunk: str, source: str) -> EventRecord:
    try:
        event = ET.fromstring(chunk)  # noqa: S314 - the admin's own export
    except ET.ParseError as exc:
        return EventRecord(None, source=source, raw=chunk[:300], problems=[f"broken XML: {exc}"])

    def find(path: str) -> ET.Element | None:
        return event.find(path.replace("{ns}", _XML_NS))

    id_el = find("{ns}System/{ns}EventID")
    event_id = int(id_el.text) if id_el is not None and (id_el.text or "").isdigit() else None
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
    if name and name != "MSExchangeTransport" and not record.problems:
        record.problems.append(f"source {name}, not MSExchangeTransport")
    record.time = _parse_time(created.get("SystemTime") if created is not None else None)
    record.computer = computer.text if computer is not None else None
    record.source = source
    return record


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
    """A .xml (wevtutil), .csv (Event Viewer) or text file; the content decides."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        text = raw.decode("cp1252", errors="replace")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16")
    return parse_any(text, str(path))
