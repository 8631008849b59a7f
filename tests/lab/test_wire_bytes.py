"""``wire.clixml``, the lab's direct writer of output objects (issue 15: psrpcore's
serializer was a large share of the lab's CPU per connector), writes byte for byte what
psrpcore writes for ``wire.encode_object``, for every object the seeded organisation returns
and for values that need escaping; and the PSRP message it goes in is psrpcore's own."""

from __future__ import annotations

import datetime
import enum
import uuid
from xml.etree import ElementTree

import pytest
from psrpcore import ServerRunspacePool
from psrpcore.types import PipelineState, PSInvocationState, PSRPMessageType, serialize

from remediate.lab import cmdlets, wire
from remediate.lab.api import LabCredential, LabObject
from remediate.lab.psrp_session import _Pool
from tests.lab.org_fixtures import open_org


class _Level(enum.Enum):
    LOW = 1


def _objects() -> list[LabObject]:
    org = open_org(None, 2525)
    objects = [cmdlets.connector_object(c, org) for c in org.connectors()]
    objects += [cmdlets.queue_object(q, org) for q in org.queues()]
    objects += [cmdlets.certificate_object(c) for c in org.certificates()]
    objects.append(cmdlets.transport_service_object("EX01", "EX01.contoso.lab"))
    odd = {
        "Escapes": 'a_x_X&<>"\n\t\x1b\x00\x7f\U0001f600 ',
        "Empty": "",
        "Nested": objects[0],
        "Big": 2**40,
        "Negative": -(2**40),
        "Doubles": [0.0, 1.5],
        "Double": 1e20,
        "Uuid": uuid.UUID("60FCD92E-4384-4CC2-9B93-BA34BD762A0C"),
        "Guid": wire.Guid("{60FCD92E-4384-4CC2-9B93-BA34BD762A0C}"),
        "Enum": _Level.LOW,
        "Credential": LabCredential("u", "p"),
        "Offset": datetime.datetime(
            2024, 1, 2, 3, 4, 5, 678, datetime.timezone(datetime.timedelta(hours=2))
        ),
        "Naive": datetime.datetime(2024, 1, 2, 3, 4, 5),
        "Tuple": ("a", "b"),
        "Same": wire.MultiValued.of(wire.STRING, ["a&b", ""]),
        "Weird & <name>": 1,
    }
    return [
        *objects,
        LabObject(["Test.Odd"], odd, "a_x&\x1b"),
        LabObject(["Test.Empty"], {}, ""),
    ]


def _psrpcore(obj: LabObject) -> bytes:
    element = serialize(wire.encode_object(obj), None)  # type: ignore[arg-type]
    return ElementTree.tostring(element, encoding="utf-8", method="xml")


@pytest.mark.parametrize("obj", _objects(), ids=lambda o: o.type_names[0] + ":" + o.to_string)
def test_clixml_is_what_psrpcore_writes(obj: LabObject) -> None:
    assert wire.clixml(obj).data == _psrpcore(obj)


def test_the_message_is_psrpcore_s_own() -> None:
    """The pool queues a Clixml body as the same PSRP message psrpcore makes of the object
    (after the fragment header, whose object id counts up)."""
    obj = _objects()[0]
    pool = _Pool()
    sent = []
    for message in (wire.encode_object(obj), wire.clixml(obj)):
        pool.prepare_message(message, PSRPMessageType.PipelineOutput, uuid.UUID(int=7))
        payload = pool.data_to_send()
        assert payload is not None and payload.pipeline_id == uuid.UUID(int=7)
        sent.append(payload.data)
    assert sent[0][21:] == sent[1][21:] and sent[0][:8] != sent[1][:8]
    assert pool.data_to_send() is None


@pytest.mark.parametrize("state", [PSInvocationState.Running, PSInvocationState.Completed])
def test_a_plain_pipeline_state_is_the_message_psrpcore_makes(state: PSInvocationState) -> None:
    """Serialized once per pool and state, then reused: the same message every time."""
    pool = _Pool()
    sent = []
    for prepare in (
        ServerRunspacePool.prepare_message,
        _Pool.prepare_message,
        _Pool.prepare_message,
    ):
        prepare(pool, PipelineState(PipelineState=int(state)), None, uuid.UUID(int=7))
        payload = pool.data_to_send()
        assert payload is not None
        sent.append(payload.data[21:])
    assert sent[0] == sent[1] == sent[2] and str(int(state)).encode() in sent[0]
