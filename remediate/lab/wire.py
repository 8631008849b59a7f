"""Exchange's remoting serializer rules, applied to every object the lab returns.

What a real Exchange server sends over remote PowerShell, and so what the lab sends:

- Objects carry their real type-name chain, ending in ``System.Object``, with no
  ``Deserialized.`` prefix (PowerShell's own client adds that when it rehydrates them), their
  ``<ToString>``, and their properties as adapted properties (``<Props>``).
- Multi-valued properties (``MultiValued``; a plain Python list is a multi-valued property of
  strings) are an ``<Obj>`` whose ``<TN>`` names ``ADMultiValuedProperty`1[[T]]`` (AD-backed
  ones) then ``MultiValuedProperty`1[[T]]``, ``MultiValuedPropertyBase`` and
  ``System.Object``, holding an ``<LST>`` of the elements' ToString; a type chain already
  written is repeated as ``<TNRef>``.
- The remoting depth is 1: every other value that is not a primitive is flattened to its
  ToString. Enums go by name, a set credential becomes
  ``System.Management.Automation.PSCredential``, sizes, time spans and AD ids become the
  strings Exchange prints. An unset value is ``<Nil>``.




Sources: MS-PSRP 2.2.5.2 (complex objects); a published capture of Get-Mailbox from an
Exchange 2016 server over PSRP (3gstudent, "pypsrp在Exchange Powershell下的优化", 2022), whose
MultiValuedProperty, TNRef, Nil, G and DT shapes this module copies; shared/exchange-notes.md,
"What comes back over remote PowerShell".
"""

from __future__ import annotations

import datetime
import enum
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from psrpcore.types import (
    PSDateTime,
    PSDouble,
    PSGuid,
    PSInt64,
    PSList,
    PSNoteProperty,
    PSObject,
)

# psrpcore's own string and date formatting (psrpcore is pinned below 0.4), so ``clixml``
# writes exactly what its serializer would
from psrpcore.types._serializer import _serialize_datetime, _serialize_string

from remediate.lab.api import LabCredential, LabObject

_EXCHANGE_ASSEMBLY = "Version=15.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35"
_MSCORLIB = "mscorlib, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089"
_INT32 = range(-(2**31), 2**31)
CREDENTIAL_TO_STRING = "System.Management.Automation.PSCredential"
STRING = "System.String"


class MultiValued(list[Any]):
    """A multi-valued property: a list whose elements are of .NET type ``element_type``
    (``ad``: an ADMultiValuedProperty, as Active Directory attributes such as server lists
    are). It compares as the plain list it is."""

    def __init__(self, element_type: str, items: Iterable[Any] = (), *, ad: bool = False) -> None:
        super().__init__(items)
        self.element_type = element_type
        self.ad = ad

    @classmethod
    def of(cls, element_type: str, items: Iterable[Any], *, ad: bool = False) -> MultiValued:
        return cls(element_type, items, ad=ad)


class Guid(str):
    """A System.Guid property (``<G>`` on the wire); compares as its string."""

    __slots__ = ()


def qualified(type_name: str) -> str:
    """``[[Type, Assembly, Version=..., ...]]`` as .NET writes a generic argument."""
    if type_name.startswith("System."):
        assembly = _MSCORLIB
    elif type_name.startswith("Microsoft.Exchange.Data.Directory."):
        assembly = f"Microsoft.Exchange.Data.Directory, {_EXCHANGE_ASSEMBLY}"
    else:
        assembly = f"Microsoft.Exchange.Data, {_EXCHANGE_ASSEMBLY}"
    return f"[[{type_name}, {assembly}]]"


def multi_valued_type_names(value: MultiValued) -> list[str]:
    argument = qualified(value.element_type)
    chain = [f"Microsoft.Exchange.Data.MultiValuedProperty`1{argument}"]
    if value.ad:
        chain.insert(0, f"Microsoft.Exchange.Data.Directory.ADMultiValuedProperty`1{argument}")
    return [*chain, "Microsoft.Exchange.Data.MultiValuedPropertyBase", "System.Object"]


def flatten(value: Any) -> str:
    """A value one level down, as its ToString."""
    if isinstance(value, LabCredential):
        return CREDENTIAL_TO_STRING
    if isinstance(value, enum.Enum):
        return str(value.name if not isinstance(value.value, str) else value.value)
    return str(value)


def encode_value(value: Any) -> Any:
    """One property value as psrpcore should serialize it."""
    if isinstance(value, Guid):
        return PSGuid(str(value))
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int) and not isinstance(value, enum.Enum):
        return value if value in _INT32 else PSInt64(value)
    if isinstance(value, float):
        return PSDouble(value)
    if isinstance(value, datetime.datetime):
        return PSDateTime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            tzinfo=value.tzinfo,
        )
    if isinstance(value, uuid.UUID):
        return PSGuid(str(value))
    if isinstance(value, list | tuple) and not isinstance(value, MultiValued):
        value = MultiValued(STRING, value)
    if isinstance(value, MultiValued):
        listed = PSList([flatten(item) for item in value])
        listed.PSObject.type_names = multi_valued_type_names(value)
        return listed
    if isinstance(value, LabObject):
        return value.to_string  # depth 1: a nested object is its ToString
    return flatten(value)


def encode_object(obj: LabObject) -> PSObject:
    """A LabObject as Exchange sends it, as psrpcore objects: real type names, adapted
    properties, ToString. The lab sends ``clixml(obj)``, the same bytes written directly;
    this is the psrpcore form those bytes are tested against, and what client tests decode."""
    ps = PSObject()
    ps.PSObject.type_names = [*obj.type_names, "System.Object"]
    for name, value in obj.properties.items():
        ps.PSObject.adapted_properties.append(PSNoteProperty(name, encode_value(value)))
    ps.PSObject.to_string = escape_string(obj.to_string)  # psrpcore writes ToString raw
    return ps


@dataclass(frozen=True)
class Clixml:
    """One object already serialized: the body of a PipelineOutput message."""

    data: bytes


def clixml(obj: LabObject) -> Clixml:
    """``encode_object(obj)`` as psrpcore serializes it (one message: RefIds and type-name
    refs from 0), written as text. psrpcore's serializer spends about 1 ms on a Send
    connector's 50 properties, a large share of the lab's CPU in a bulk run (issue 15).
    Strings and dates go through psrpcore's own formatting."""
    refs = _Refs()
    parts = ['<Obj RefId="0">']
    refs.type_names(parts, [*obj.type_names, "System.Object"])
    if obj.properties:
        parts.append("<Props>")
        for name, value in obj.properties.items():
            _property(parts, _attribute(_escaped(name)), value, refs)
        parts.append("</Props>")
    to_string = escape_string(obj.to_string)
    if to_string:
        parts.append(f"<ToString>{_text(to_string)}</ToString>")
    parts.append("</Obj>")
    return Clixml("".join(parts).encode("utf-8"))


class _Refs:
    """The reference ids of one message, as psrpcore numbers them."""

    def __init__(self) -> None:
        self.objects = 1  # the next object's; 0 is the message's own object
        self._type_names: dict[str, int] = {}

    def type_names(self, parts: list[str], names: list[str]) -> None:
        known = self._type_names.get(names[0])
        if known is not None:
            parts.append(f'<TNRef RefId="{known}" />')
            return
        number = self._type_names[names[0]] = len(self._type_names)
        parts.append(f'<TN RefId="{number}">')
        parts.extend(f"<T>{_text(name)}</T>" for name in names)
        parts.append("</TN>")


def _property(parts: list[str], name: str, value: Any, refs: _Refs) -> None:
    """One property (``name`` already escaped), as ``encode_value`` makes it and psrpcore
    writes it, branch for branch."""
    if value is None:
        parts.append(f'<Nil N="{name}" />')
    elif isinstance(value, bool):
        parts.append(f'<B N="{name}">{"true" if value else "false"}</B>')
    elif isinstance(value, Guid | uuid.UUID):
        parts.append(f'<G N="{name}">{uuid.UUID(str(value))}</G>')
    elif isinstance(value, str):
        parts.append(_string(value, name))
    elif isinstance(value, int) and not isinstance(value, enum.Enum):
        tag = "I32" if value in _INT32 else "I64"
        parts.append(f'<{tag} N="{name}">{int(value)}</{tag}>')
    elif isinstance(value, float):
        parts.append(f'<Db N="{name}">{str(value).upper()}</Db>')
    elif isinstance(value, datetime.datetime):
        parts.append(f'<DT N="{name}">{_serialize_datetime(value)}</DT>')
    elif isinstance(value, list | tuple):
        if not isinstance(value, MultiValued):
            value = MultiValued(STRING, value)
        parts.append(f'<Obj RefId="{refs.objects}" N="{name}">')
        refs.objects += 1
        refs.type_names(parts, multi_valued_type_names(value))
        if value:
            parts.append("<LST>")
            parts.extend(_string(flatten(item)) for item in value)
            parts.append("</LST></Obj>")
        else:
            parts.append("<LST /></Obj>")
    elif isinstance(value, LabObject):
        parts.append(_string(value.to_string, name))
    else:
        parts.append(_string(flatten(value), name))


def _string(value: str, name: str | None = None) -> str:
    text = _text(_escaped(value))
    attribute = "" if name is None else f' N="{name}"'
    return f"<S{attribute}>{text}</S>" if text else f"<S{attribute} />"


def _escaped(value: str) -> str:
    """psrpcore's string escaping; it leaves printable ASCII without "_" as it is."""
    if value.isascii() and value.isprintable() and "_" not in value:
        return value
    return _serialize_string(value)


def _text(text: str) -> str:
    """Element text as ElementTree escapes it."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


def _attribute(text: str) -> str:
    """An attribute value as ElementTree escapes it (psrpcore's escaping has already turned
    every control character into ``_xHHHH_``)."""
    return _text(text).replace('"', "&quot;")


_ESCAPE_MARK = re.compile("(?i)_(x)")
_NOT_XML = re.compile(
    "[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\ud800-\udfff\ufffe\uffff]"
)


def escape_string(text: str) -> str:
    """A string as PowerShell's serializer writes it (MS-PSRP 2.2.5.3.2): ``_x`` itself and
    every character XML cannot carry as ``_xHHHH_``."""
    text = _ESCAPE_MARK.sub("_x005F_\\1", text)
    return _NOT_XML.sub(lambda m: f"_x{ord(m.group(0)):04X}_", text)
