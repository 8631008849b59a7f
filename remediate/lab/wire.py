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


class _Fast:
    """psrpcore's attribute lookup, in constant time. ``PSObject.__getattribute__`` builds a
    dict of all the object's properties on every attribute access, ``isinstance`` included,
    before it tries the plain attribute: with Get-SendConnector's 50 properties that was most
    of the lab's cost of sending an object (issue 15). Same answers: the plain attribute
    first, then psrpcore's own lookup (properties, and its merged ``__dict__``)."""

    __slots__ = ()

    def __getattribute__(self, item: str) -> Any:
        if item != "__dict__":
            try:
                return object.__getattribute__(self, item)
            except AttributeError:
                pass
        return super().__getattribute__(item)


class _Object(_Fast, PSObject):
    """An object the lab sends (see ``_Fast``)."""


class _List(_Fast, PSList):
    """A multi-valued property the lab sends (see ``_Fast``)."""


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
        listed = _List([flatten(item) for item in value])
        listed.PSObject.type_names = multi_valued_type_names(value)
        return listed
    if isinstance(value, LabObject):
        return value.to_string  # depth 1: a nested object is its ToString
    return flatten(value)


def encode_object(obj: LabObject) -> PSObject:
    """A LabObject as Exchange sends it: real type names, adapted properties, ToString."""
    ps = _Object()
    meta = ps.PSObject
    meta.type_names = [*obj.type_names, "System.Object"]
    properties = meta.adapted_properties
    for name, value in obj.properties.items():
        # PSNoteProperty(name, value) makes a throw-away PSObject per property for a setter
        # a note property has not; set_value on the object itself stores the same value
        prop = PSNoteProperty(name)
        prop.set_value(encode_value(value), ps)
        properties.append(prop)
    meta.to_string = escape_string(obj.to_string)  # psrpcore writes ToString raw
    return ps


_ESCAPE_MARK = re.compile("(?i)_(x)")
_NOT_XML = re.compile(
    "[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\ud800-\udfff\ufffe\uffff]"
)


def escape_string(text: str) -> str:
    """A string as PowerShell's serializer writes it (MS-PSRP 2.2.5.3.2): ``_x`` itself and
    every character XML cannot carry as ``_xHHHH_``."""
    text = _ESCAPE_MARK.sub("_x005F_\\1", text)
    return _NOT_XML.sub(lambda m: f"_x{ord(m.group(0)):04X}_", text)
