"""The lab's cheaper psrpcore hot spots (issue 15) answer as psrpcore's own: the attribute
lookup gives the same value or the same AttributeError, for every attribute, property,
method and ``__dict__`` of deserialized messages and of objects built by hand; a note
property holds what psrpcore's initialiser stores."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import pytest
from psrpcore.types import (
    PSCredential,
    PSInt,
    PSList,
    PSNoteProperty,
    PSObject,
    PSSecureString,
    deserialize,
)

from remediate.lab import cmdlets, psrpcore_speed, wire
from tests.lab.org_fixtures import open_org

# A CreatePipeline message body as pypsrp 0.9 sends it for Set-SendConnector (RefIds,
# enums, nested lists): the objects the lab deserializes per command.
CREATE_PIPELINE = (
    '<Obj RefId="0"><MS><B N="NoInput">true</B><Obj RefId="1" N="ApartmentState"><TN RefId="0">'
    "<T>System.Management.Automation.Runspaces.ApartmentState</T><T>System.Enum</T>"
    "<T>System.ValueType</T><T>System.Object</T></TN><ToString>UNKNOWN</ToString><I32>2</I32>"
    '</Obj><Obj RefId="3" N="HostInfo"><MS><B N="_isHostNull">true</B>'
    '<B N="_isHostUINull">true</B></MS></Obj><Obj RefId="4" N="PowerShell"><MS>'
    '<B N="IsNested">false</B><Nil N="ExtraCmds" /><Obj RefId="5" N="Cmds"><TN RefId="2">'
    "<T>System.Collections.Generic.List`1[[System.Management.Automation.PSObject]]</T>"
    '<T>System.Object</T></TN><LST><Obj RefId="6"><MS><S N="Cmd">Set-SendConnector</S>'
    '<B N="IsScript">false</B><Obj RefId="7" N="MergeMyResult"><TNRef RefId="0" />'
    '<ToString>None</ToString><I32>0</I32></Obj><Obj RefId="10" N="Args"><TNRef RefId="2" />'
    '<LST><Obj RefId="11"><MS><S N="N">Identity</S><S N="V">Outbound to Partner</S></MS></Obj>'
    '<Obj RefId="12"><MS><S N="N">Port</S><I32 N="V">2601</I32></MS></Obj><Ref RefId="11" />'
    "</LST></Obj></MS></Obj></LST></Obj></MS></Obj></MS></Obj>"
)


def _walk(value: Any, seen: list[Any]) -> None:
    if not isinstance(value, PSObject) or any(value is s for s in seen):
        return
    seen.append(value)
    meta = object.__getattribute__(value, "PSObject")
    for prop in [*meta.adapted_properties, *meta.extended_properties]:
        _walk(prop.get_value(value), seen)
    if isinstance(value, list):
        for item in value:
            _walk(item, seen)


def _objects() -> list[Any]:
    objects: list[Any] = []
    message = ElementTree.fromstring(CREATE_PIPELINE)  # noqa: S314 - constant test data
    _walk(deserialize(message, None), objects)  # type: ignore[arg-type]
    both = PSObject()
    both.PSObject.adapted_properties.append(PSNoteProperty("Name", "adapted"))
    both.PSObject.extended_properties.append(PSNoteProperty("Name", "extended"))
    both.PSObject.extended_properties.append(PSNoteProperty("PSObject", "shadowed"))
    both.PSObject.extended_properties.append(PSNoteProperty("Name", "the last extended"))
    both.PSObject.adapted_properties.append(PSNoteProperty("Only", "adapted"))
    both.PSObject.adapted_properties.append(PSNoteProperty("Only", "the last adapted"))
    listed = PSList(["a", "b"])
    listed.PSObject.type_names = ["T"]
    credential = PSCredential(UserName="u", Password=PSSecureString("p"))
    org = open_org(None, 2525)
    connector = wire.encode_object(cmdlets.connector_object(org.connectors()[0], org))
    return [*objects, both, listed, credential, connector]


def _names(value: Any) -> list[str]:
    meta = object.__getattribute__(value, "PSObject")
    names = {p.name for p in [*meta.adapted_properties, *meta.extended_properties]}
    names |= set(dir(type(value))) - {"__abstractmethods__"}
    return sorted(names | {"__dict__", "PSObject", "PSTypeNames", "NoSuchThing", "_instance"})


def _answer(lookup: Any, value: Any, name: str) -> tuple[str, Any]:
    try:
        got = lookup(value, name)
    except AttributeError as exc:
        return "AttributeError", str(exc)
    except NotImplementedError:
        return "NotImplementedError", None
    return "value", got


@pytest.mark.parametrize("index", range(len(_objects())))
def test_lookup_answers_as_psrpcore(index: int) -> None:
    value = _objects()[index]
    assert len(_names(value)) > 5
    for name in _names(value):
        mine = _answer(psrpcore_speed.lookup, value, name)
        theirs = _answer(psrpcore_speed.ORIGINAL, value, name)
        assert mine[0] == theirs[0], name
        if mine[0] == "value" and name != "__dict__" and callable(mine[1]):
            assert getattr(mine[1], "__func__", mine[1]) == getattr(
                theirs[1], "__func__", theirs[1]
            )
        elif name == "__dict__":
            assert mine[1].keys() == theirs[1].keys()
        else:
            assert mine == theirs, name


@pytest.mark.parametrize(
    "args",
    [("N",), ("N", "v"), ("N", None), ("N", "5", True, PSInt), ("N", 5, False, PSInt), ("N", [1])],
)
def test_a_note_property_holds_what_psrpcore_stores(args: tuple) -> None:
    mine, theirs = PSNoteProperty.__new__(PSNoteProperty), PSNoteProperty.__new__(PSNoteProperty)
    psrpcore_speed.note_property(mine, *args)
    psrpcore_speed.ORIGINAL_NOTE_PROPERTY(theirs, *args)
    assert vars(mine) == vars(theirs)
    assert type(mine.get_value(PSObject())) is type(theirs.get_value(PSObject()))


def test_the_lab_installs_them() -> None:
    from remediate.lab import psrp_session  # noqa: F401  # lazy: importing it installs them

    assert PSObject.__getattribute__ is psrpcore_speed.lookup
    assert PSNoteProperty.__init__ is psrpcore_speed.note_property
