"""What pypsrp hands back from Exchange, read into plain Python values.

The one reader between the wire and the domain model (``exchange.SendConnector``,
``exchange.QueueInfo``). Exchange sends its objects at remoting depth 1
(shared/exchange-notes.md, "What comes back over remote PowerShell"):

- a multi-valued property (SmartHosts, AddressSpaces, SourceTransportServers, ...) is an
  object typed ``MultiValuedProperty`1[[...]]`` holding an ``<LST>`` of its elements' ToString.
  pypsrp 0.9.1 does not turn it into a list: it gives a GenericComplexObject with no
  properties whose ``property_sets`` holds the raw ``<LST>...</LST>`` XML. ``plain`` parses
  that XML (bounded in size, with defusedxml and no DTD) into a list of strings;
- plain Python lists (older servers, other clients' shapes, the tests) are read as they are;
- GUIDs arrive as ``uuid.UUID`` and become their string; strings keep PowerShell's
  ``_xHHHH_`` escapes undone, also inside raw list XML, which pypsrp leaves encoded.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from remediate.core.exchange import ExchangeCertificate, QueueInfo, SendConnector

MAX_LIST_XML = 4 * 1024 * 1024  # far beyond any connector's smart-host or address list
_LIST_TAGS = ("<LST", "<IE", "<STK", "<QUE")
_ESCAPE = re.compile(r"_[xX]([0-9A-Fa-f]{4})_")


class WireShapeError(ValueError):
    """A value from the server that cannot be read (the message names what and why)."""


def plain(obj: Any) -> Any:
    """A deserialized PSRP value as plain Python: objects as dicts of their properties,
    multi-valued properties and lists as lists, GUIDs as strings."""
    # lazy: pypsrp and requests take about 100 ms to import; only a connection needs them
    from pypsrp.complex_objects import ComplexObject, GenericComplexObject

    if isinstance(obj, GenericComplexObject):
        listed = _listed(obj)
        if listed is not None:
            return listed
        props: dict[str, Any] = {}
        for source in (obj.adapted_properties, obj.extended_properties):
            if isinstance(source, dict):
                props.update({k: plain(v) for k, v in source.items()})
        if not props and obj.to_string is not None:
            return str(obj)
        return props
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, ComplexObject):
        try:
            return str(obj)
        except TypeError:
            return repr(obj)
    return obj


def _listed(obj: Any) -> list[Any] | None:
    """The elements of a collection pypsrp left as raw XML, or None if ``obj`` is none."""
    raw = [p for p in obj.property_sets if isinstance(p, str) and p.lstrip().startswith(_LIST_TAGS)]
    if not raw:
        return None
    items: list[Any] = []
    for text in raw:
        items.extend(parse_list_xml(text))
    return items


def parse_list_xml(text: str) -> list[Any]:
    """The elements of one ``<LST>`` (or IE/STK/QUE) element: their text, or an object's
    ToString. No DTD or entity is accepted, and the size is bounded."""
    if len(text) > MAX_LIST_XML:
        raise WireShapeError(f"a list from the server is larger than {MAX_LIST_XML} bytes")
    try:
        root = fromstring(text, forbid_dtd=True)
    except DefusedXmlException:
        raise WireShapeError("a list from the server holds a DTD or entity declaration") from None
    except ParseError as exc:
        raise WireShapeError(f"a list from the server is not well-formed XML ({exc})") from None
    return [value for element in root if (value := _element_value(element)) is not None]


def _element_value(element: Element) -> Any:
    if element.tag == "Nil":
        return None
    if element.tag == "B":
        return (element.text or "").strip().lower() == "true"
    if element.tag in ("I16", "I32", "I64", "U16", "U32", "U64", "By", "SB"):
        return int((element.text or "0").strip())
    if element.tag == "Obj":
        to_string = element.find("ToString")
        if to_string is not None:
            return decode_string(to_string.text)
        nested = next((child for child in element if child.tag in ("LST", "IE")), None)
        return [] if nested is None else [_element_value(e) for e in nested]
    return decode_string(element.text)


def decode_string(text: str | None) -> str:
    """PowerShell's ``_xHHHH_`` escapes undone (UTF-16 code units; surrogate pairs joined)."""
    if not text:
        return ""
    if "_" not in text:
        return text

    def unit(match: re.Match[str]) -> str:
        return chr(int(match.group(1), 16))

    joined = _ESCAPE.sub(unit, text)
    return joined.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def read_connectors(output: list[Any]) -> tuple[list[SendConnector], list[str]]:
    """Get-SendConnector's output as connectors, and a warning for each object that could
    not be read (named by whatever it carries), so one odd object does not hide the rest."""
    connectors: list[SendConnector] = []
    unreadable: list[str] = []
    for item in output:
        try:
            if not isinstance(item, dict):
                raise WireShapeError(f"a {type(item).__name__} came instead of an object")
            connectors.append(SendConnector.from_properties(item))
        except (ValueError, TypeError) as exc:
            unreadable.append(f"a Send connector {_label(item)} could not be read: {exc}")
    return connectors, unreadable


def read_queues(output: list[Any]) -> list[QueueInfo]:
    """Get-Queue's output as QueueInfo (objects that are not queues are passed over)."""
    return [queue_info(item) for item in output if isinstance(item, dict)]


def read_certificates(output: list[Any], server: str) -> list[ExchangeCertificate]:
    """Get-ExchangeCertificate's output (Services flattened to "IMAP, POP, SMTP")."""
    return [
        ExchangeCertificate(
            server=server,
            thumbprint=str(item.get("Thumbprint") or ""),
            subject=str(item.get("Subject") or ""),
            issuer=str(item.get("Issuer") or ""),
            services=str(item.get("Services") or ""),
        )
        for item in output
        if isinstance(item, dict)
    ]


def queue_info(props: dict[str, Any]) -> QueueInfo:
    known = {"Identity", "NextHopDomain", "NextHopConnector", "Status", "MessageCount", "LastError"}
    count = props.get("MessageCount")
    return QueueInfo(
        identity=str(props.get("Identity") or ""),
        next_hop_domain=str(props.get("NextHopDomain") or ""),
        next_hop_connector=str(props.get("NextHopConnector") or ""),
        status=str(props.get("Status") or ""),
        message_count=int(count) if isinstance(count, int | str) and str(count).isdigit() else 0,
        last_error=str(props["LastError"]) if props.get("LastError") else None,
        extra={k: v for k, v in props.items() if k not in known},
    )


def _label(item: Any) -> str:
    if isinstance(item, dict):
        name = item.get("Name") or item.get("Identity") or item.get("Guid")
        return f"'{name}'" if name else "(without a name)"
    text = str(item)
    if text.lstrip().startswith("<"):  # XML pypsrp could not parse: name it by its ToString
        start = text.find("<ToString>")
        end = text.find("</ToString>", start)
        if start < 0 or end < 0:
            return "(sent as XML pypsrp could not parse)"
        text = decode_string(text[start + len("<ToString>") : end])
    return f"'{text[:80]}'" if text else "(without a name)"
