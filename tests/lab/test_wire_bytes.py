"""The lab's cheaper output objects (issue 15: psrpcore's attribute lookup cost most of the
lab's CPU per object sent) serialize byte for byte as psrpcore's own PSObject and PSList do,
for every object the seeded organisation returns."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

from psrpcore.types import PSList, PSNoteProperty, PSObject, serialize

from remediate.lab import cmdlets, wire
from remediate.lab.api import LabObject
from tests.lab.org_fixtures import open_org


def _psrpcore_own(value: Any) -> Any:
    """The same object built from psrpcore's own classes, as the lab built it before."""
    if isinstance(value, PSList):
        listed = PSList(list(value))
        listed.PSObject.type_names = list(value.PSObject.type_names)
        return listed
    if not isinstance(value, wire._Object):
        return value
    plain = PSObject()
    plain.PSObject.type_names = list(value.PSObject.type_names)
    for prop in value.PSObject.adapted_properties:
        own = PSNoteProperty(prop.name, _psrpcore_own(prop.get_value(value)))
        plain.PSObject.adapted_properties.append(own)
    plain.PSObject.to_string = value.PSObject.to_string
    return plain


def _clixml(value: Any) -> bytes:
    return ElementTree.tostring(serialize(value, None), encoding="utf-8", method="xml")


def _objects() -> list[LabObject]:
    org = open_org(None, 2525)
    objects = [cmdlets.connector_object(c, org) for c in org.connectors()]
    objects += [cmdlets.queue_object(q, org) for q in org.queues()]
    objects += [cmdlets.certificate_object(c) for c in org.certificates()]
    objects.append(cmdlets.transport_service_object("EX01", "EX01.contoso.lab"))
    escapes = LabObject(["Test.Object"], {"Name": "a_x_\x1b\x00b", "Any": 1.5}, "a_x\x1b")
    return [*objects, escapes]


def test_lab_objects_serialize_as_psrpcore_objects_do() -> None:
    objects = _objects()
    assert any(isinstance(v, list) for o in objects for v in o.properties.values())
    for obj in objects:
        encoded = wire.encode_object(obj)
        assert _clixml(encoded) == _clixml(_psrpcore_own(encoded)), obj.to_string


def test_lab_objects_answer_attribute_lookups_as_psrpcore_objects_do() -> None:
    """Properties by attribute and index, the merged __dict__, a missing name."""
    encoded = wire.encode_object(_objects()[0])
    own = _psrpcore_own(encoded)
    assert encoded.Name == own.Name and encoded["Port"] == own["Port"]
    assert encoded.__dict__.keys() == own.__dict__.keys()
    assert encoded.SmartHosts == own.SmartHosts and type(encoded.SmartHosts) is not PSList
    for value in (encoded, own):
        try:
            value.NoSuchProperty  # noqa: B018 - the lookup is the test
        except AttributeError:
            continue
        raise AssertionError("a missing property must raise AttributeError")
