"""A small writer of real .evtx files for the tests, from the format as libyal documents it
("Windows XML Event Log (EVTX) format", libevtx/documentation, sections File header, Chunk,
Event record, Binary XML) and [MS-EVEN6] BinXml: no sample .evtx ships here.

One file header block, one 64 KiB chunk, event records as Windows writes them: a BinXML
fragment holding a template instance, whose inline template definition is the event's elements
(OpenStartElement / Attribute / Value tokens, names stored inline) with substitution tokens
where the instance data's values go (event ID, time, computer, the insertion strings). Plain
elements without a template are not used: libyal and the evtx crate disagree on whether their
start tags carry a dependency identifier. The `evtx` package (the independent reader) parses
what this writes.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

FILE_HEADER_SIZE = 4096
CHUNK_SIZE = 65536
CHUNK_HEADER_SIZE = 512
NS = "http://schemas.microsoft.com/win/2004/08/events/event"

# BinXml tokens (libyal, "Token types")
EOF, OPEN_START, CLOSE_START, CLOSE_EMPTY, END_ELEMENT = 0x00, 0x01, 0x02, 0x03, 0x04
VALUE, ATTRIBUTE, TEMPLATE_INSTANCE, SUBSTITUTION, FRAGMENT_HEADER = 0x05, 0x06, 0x0C, 0x0D, 0x0F
MORE = 0x40  # "has more data": an attribute list goes on / a start tag has attributes
STRING_TYPE, UINT16_TYPE, UINT64_TYPE, FILETIME_TYPE = 0x01, 0x06, 0x0A, 0x11


@dataclass(frozen=True)
class Sub:
    """Where template value ``index`` goes (a normal substitution of ``value_type``)."""

    index: int
    value_type: int


@dataclass
class Element:
    name: str
    attributes: dict[str, str | Sub] = field(default_factory=dict)
    children: list[Element] = field(default_factory=list)
    text: str | Sub | None = None


@dataclass
class Event:
    event_id: int
    data: list[str]
    time: datetime
    provider: str = "MSExchangeTransport"
    computer: str = "EX01.contoso.lab"
    qualifiers: int = 49156  # severity bits "error" of a classic event's 32-bit identifier

    def template(self) -> Element:
        """The event's elements, values left to substitutions 0..n as Windows' templates do."""
        system = Element(
            "System",
            children=[
                Element("Provider", {"Name": Sub(0, STRING_TYPE)}),
                Element("EventID", {"Qualifiers": Sub(1, UINT16_TYPE)}, text=Sub(2, UINT16_TYPE)),
                Element("Level", text="2"),
                Element("Task", text="1"),
                Element("Keywords", text="0x80000000000000"),
                Element("TimeCreated", {"SystemTime": Sub(3, FILETIME_TYPE)}),
                Element("EventRecordID", text=Sub(4, UINT64_TYPE)),
                Element("Channel", text="Application"),
                Element("Computer", text=Sub(5, STRING_TYPE)),
                Element("Security"),
            ],
        )
        data = [Element("Data", text=Sub(6 + n, STRING_TYPE)) for n in range(len(self.data))]
        return Element(
            "Event", {"xmlns": NS}, children=[system, Element("EventData", children=data)]
        )

    def values(self, record_id: int) -> list[tuple[int, bytes]]:
        strings = [(STRING_TYPE, _utf16(d)) for d in self.data]
        return [
            (STRING_TYPE, _utf16(self.provider)),
            (UINT16_TYPE, struct.pack("<H", self.qualifiers)),
            (UINT16_TYPE, struct.pack("<H", self.event_id)),
            (FILETIME_TYPE, struct.pack("<Q", _filetime(self.time))),
            (UINT64_TYPE, struct.pack("<Q", record_id)),
            (STRING_TYPE, _utf16(self.computer)),
            *strings,
        ]


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


def _chars(text: str) -> int:
    return len(_utf16(text)) // 2


class _BinXml:
    """Serialises elements; names inline, so each name offset points just past itself."""

    def __init__(self, base: int) -> None:
        self.base = base  # where this BinXML starts, relative to the chunk
        self.out = bytearray()

    def name(self, text: str) -> None:
        here = self.base + len(self.out) + 4
        self.out += struct.pack("<I", here)
        # Name: 4 bytes (next name in the chunk's hash bucket: none), hash, characters, string
        # with its end-of-string character.
        self.out += struct.pack("<IHH", 0, _name_hash(text), _chars(text))
        self.out += _utf16(text) + b"\0\0"

    def value(self, text: str | Sub) -> None:
        if isinstance(text, Sub):
            self.out += bytes([SUBSTITUTION]) + struct.pack("<HB", text.index, text.value_type)
            return
        self.out += bytes([VALUE, STRING_TYPE]) + struct.pack("<H", _chars(text)) + _utf16(text)

    def element(self, element: Element) -> None:
        start = len(self.out)
        token = OPEN_START | (MORE if element.attributes else 0)
        # dependency identifier (-1: none), then the data size (filled in below)
        self.out += bytes([token]) + struct.pack("<hI", -1, 0)
        self.name(element.name)
        if element.attributes:
            list_at = len(self.out)
            self.out += b"\0\0\0\0"
            items = list(element.attributes.items())
            for index, (key, text) in enumerate(items):
                self.out += bytes([ATTRIBUTE | (MORE if index < len(items) - 1 else 0)])
                self.name(key)
                self.value(text)
            struct.pack_into("<I", self.out, list_at, len(self.out) - list_at - 4)
        if element.children or element.text is not None:
            self.out.append(CLOSE_START)
            if element.text is not None:
                self.value(element.text)
            for child in element.children:
                self.element(child)
            self.out.append(END_ELEMENT)
        else:
            self.out.append(CLOSE_EMPTY)
        struct.pack_into("<I", self.out, start + 3, len(self.out) - start - 7)


def _name_hash(text: str) -> int:
    """[MS-EVEN6] name hash: low 16 bits of hash = hash * 65599 + code unit, over UTF-16."""
    value = 0
    for (unit,) in struct.iter_unpack("<H", _utf16(text)):
        value = (value * 65599 + unit) & 0xFFFFFFFF
    return value & 0xFFFF


def _filetime(moment: datetime) -> int:
    epoch = datetime(1601, 1, 1, tzinfo=UTC)
    return int((moment.astimezone(UTC) - epoch).total_seconds() * 10_000_000)


def _record(event: Event, record_id: int, offset: int) -> bytes:
    binxml = _BinXml(offset + 24)
    out = binxml.out
    out += bytes([FRAGMENT_HEADER, 1, 1, 0, TEMPLATE_INSTANCE, 1])
    out += struct.pack("<I", record_id)  # template identifier
    out += struct.pack("<I", binxml.base + len(out) + 4)  # definition data: right here
    out += struct.pack("<I", 0)  # next template definition: none
    out += uuid.uuid5(uuid.NAMESPACE_URL, f"remediate-test/{record_id}").bytes_le
    size_at = len(out)
    out += b"\0\0\0\0"
    out += bytes([FRAGMENT_HEADER, 1, 1, 0])
    binxml.element(event.template())
    out.append(EOF)
    struct.pack_into("<I", out, size_at, len(out) - size_at - 4)
    values = event.values(record_id)
    out += struct.pack("<I", len(values))
    for value_type, raw in values:
        out += struct.pack("<HBB", len(raw), value_type, 0)
    for _, raw in values:
        out += raw
    out.append(EOF)
    size = 24 + len(binxml.out) + 4
    head = b"\x2a\x2a\x00\x00" + struct.pack("<IQQ", size, record_id, _filetime(event.time))
    return head + bytes(binxml.out) + struct.pack("<I", size)


def _chunk(events: list[Event]) -> bytes:
    records = bytearray()
    last_offset = CHUNK_HEADER_SIZE
    for number, event in enumerate(events, start=1):
        last_offset = CHUNK_HEADER_SIZE + len(records)
        records += _record(event, number, last_offset)
    free = CHUNK_HEADER_SIZE + len(records)
    if free > CHUNK_SIZE:
        raise ValueError("this writer fills one chunk only")
    header = bytearray(CHUNK_HEADER_SIZE)
    count = len(events)
    struct.pack_into(
        "<8sQQQQIIII",
        header,
        0,
        b"ElfChnk\0",
        1,
        count,
        1,
        count,
        128,
        last_offset,
        free,
        zlib.crc32(bytes(records)),
    )
    # header checksum: bytes 0-120 and 128-512 (the common-string and template tables: empty)
    struct.pack_into("<I", header, 124, zlib.crc32(bytes(header[:120]) + bytes(header[128:])))
    return bytes(header) + bytes(records) + bytes(CHUNK_SIZE - free)


def evtx_bytes(events: list[Event]) -> bytes:
    """A one-chunk .evtx holding ``events`` (record numbers 1..n)."""
    header = bytearray(FILE_HEADER_SIZE)
    struct.pack_into(
        "<8sQQQIHHHH", header, 0, b"ElfFile\0", 0, 0, len(events) + 1, 128, 1, 3, 4096, 1
    )
    struct.pack_into("<I", header, 124, zlib.crc32(bytes(header[:120])))
    return bytes(header) + _chunk(events)
