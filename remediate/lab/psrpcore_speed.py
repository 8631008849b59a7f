"""Two of psrpcore's hot spots in constant time, for the lab's process.

- ``PSObject.__getattribute__`` builds a dict of all the object's properties on every
  attribute access, before it tries the plain attribute; ``isinstance`` on a PSObject goes
  through it too.
- ``PSNoteProperty(name, value)`` makes a throw-away ``PSObject`` for a setter that a note
  property never has; the deserializer makes one per property it reads.

Deserializing one CreatePipeline message makes about 60 objects and thousands of lookups:
about a third of the lab's CPU per Set-SendConnector (issue 15). ``install()`` replaces both
with code that gives the same answers: the plain attribute first, as psrpcore's lookup does,
then the properties as psrpcore ranks them (extended over adapted, the last of one name);
the note property's value stored as psrpcore's ``set_value`` stores it. Nothing else in the
process uses psrpcore (the tool speaks pypsrp); tests/lab/test_psrpcore_speed.py compares
the answers with psrpcore's own.
"""

from __future__ import annotations

from typing import Any

from psrpcore.types import PSNoteProperty, PSObject

# psrpcore's own, private (psrpcore is pinned below 0.4): the base class's initialiser and
# the marker of "no value given"
from psrpcore.types._base import PSPropertyInfo, _UnsetValue

ORIGINAL = PSObject.__getattribute__
ORIGINAL_NOTE_PROPERTY = PSNoteProperty.__init__
_SPARE = PSObject()  # handed to set_value, which uses it only for a setter


def lookup(self: PSObject, item: str) -> Any:
    """``PSObject.__getattribute__`` without building the dict of properties."""
    if item == "__dict__":
        return ORIGINAL(self, item)  # the plain __dict__ merged with the properties
    try:
        return super(PSObject, self).__getattribute__(item)
    except AttributeError:
        meta = super(PSObject, self).__getattribute__("PSObject")
        for properties in (meta.extended_properties, meta.adapted_properties):
            for prop in reversed(properties):
                if prop.name == item:
                    return prop.get_value(self)
        raise


def note_property(
    self: PSNoteProperty,
    name: str,
    value: Any = _UnsetValue,
    mandatory: bool = False,
    ps_type: type | None = None,
) -> None:
    """``PSNoteProperty.__init__`` without the throw-away PSObject."""
    PSPropertyInfo.__init__(self, name, mandatory=mandatory, ps_type=ps_type)
    if value != _UnsetValue:
        self.set_value(value, _SPARE)


def install() -> None:
    """Use ``lookup`` and ``note_property`` in psrpcore (idempotent)."""
    setattr(PSObject, "__getattribute__", lookup)  # noqa: B010 - mypy refuses a method assignment
    setattr(PSNoteProperty, "__init__", note_property)  # noqa: B010 - as above
