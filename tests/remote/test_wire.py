"""Exchange's wire shapes, from hand-written fixtures (tests/fixtures/wire/README.md names the
sources), through pypsrp's own Serializer and the tool's one reader; and the lab's wire XML
for the same objects compared with them element by element."""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from psrpcore.types._serializer import _Serializer
from pypsrp.serializer import Serializer

from remediate.core.exchange import (
    AuthMechanism,
    CredentialState,
    ProtocolLoggingLevel,
    TlsAuthLevel,
)
from remediate.core.last_error import Cause, parse_last_error
from remediate.lab.api import LabCredential
from remediate.lab.cmdlets import connector_object, queue_object
from remediate.lab.org import Connector, Organization, Queue
from remediate.lab.wire import encode_object
from remediate.remote.wire import (
    WireShapeError,
    decode_string,
    parse_list_xml,
    plain,
    read_connectors,
    read_queues,
)

WIRE = Path(__file__).parent.parent / "fixtures" / "wire"


def messages(name: str) -> list[ET.Element]:
    return list(ET.parse(WIRE / name).getroot())  # noqa: S314 - the project's own fixture


def through_pypsrp(element: ET.Element) -> Any:
    """What pypsrp 0.9.1 hands back for one PSRP message, unmodified."""
    return Serializer().deserialize(ET.tostring(element, encoding="unicode"))


def test_pypsrp_leaves_multi_valued_properties_as_raw_list_xml() -> None:
    """The reason for the reader: the shape a list-expecting reader saw as empty."""
    raw = through_pypsrp(messages("get-sendconnector.xml")[0])
    smart_hosts = raw.adapted_properties["SmartHosts"]
    assert smart_hosts.adapted_properties == {} and smart_hosts.extended_properties == {}
    assert smart_hosts.property_sets == [
        "<LST><S>relay.tailspintoys.example</S><S>[10.0.0.5]</S></LST>"
    ]


def test_a_real_get_sendconnector_answer_reads_whole() -> None:
    output = [plain(through_pypsrp(m)) for m in messages("get-sendconnector.xml")]
    connectors, unreadable = read_connectors(output)
    assert unreadable == []
    relay, scanner = connectors
    assert relay.name == "Outbound to Relay"
    assert relay.guid == "0f7e3a52-9c1d-4a4e-8f0e-6d2b1c3a4b5c"
    assert relay.smart_hosts == ("relay.tailspintoys.example", "[10.0.0.5]")
    assert relay.address_spaces == ("SMTP:tailspintoys.example;1", "SMTP:*.tailspintoys.example;2")
    assert relay.source_transport_servers == ("EX01", "EX02")
    assert relay.port == 587 and relay.dns_routing_enabled is False
    assert relay.smart_host_auth_mechanism is AuthMechanism.BASIC_AUTH_REQUIRE_TLS
    assert relay.tls_auth_level is TlsAuthLevel.ENCRYPTION_ONLY and relay.require_tls
    # exchange-notes.md: the credential arrives as its type name; never a user name
    assert relay.credential is CredentialState.SET
    assert relay.max_message_size == "35 MB (36,700,160 bytes)"
    assert scanner.name == "Outbound to Scanner_x"  # _x005F_ is "_" (MS-PSRP 2.2.5.3.2)
    assert scanner.credential is CredentialState.NOT_SET  # <Nil>
    assert scanner.smart_hosts == ("[192.0.2.25]",)
    assert scanner.source_transport_servers == ("EX01\x1b",)  # escapes decoded in raw lists
    assert scanner.protocol_logging_level is ProtocolLoggingLevel.VERBOSE
    assert scanner.tls_auth_level is None


def test_a_real_get_queue_answer_reads_whole() -> None:
    output = [plain(through_pypsrp(m)) for m in messages("get-queue.xml")]
    failing, idle = read_queues(output)
    assert (failing.identity, failing.server, failing.status) == ("EX01\\4", "EX01", "Retry")
    assert failing.next_hop_connector == "0f7e3a52-9c1d-4a4e-8f0e-6d2b1c3a4b5c"
    assert failing.next_hop_domain == "relay.tailspintoys.example,[10.0.0.5]"
    assert failing.message_count == 3
    diagnosis = parse_last_error(failing.last_error)
    assert diagnosis is not None and diagnosis.cause is Cause.CREDENTIAL
    assert diagnosis.fields["FQDN"] == "relay.tailspintoys.example"
    assert (idle.message_count, idle.last_error) == (0, None)


def test_an_object_that_is_not_a_connector_is_named_and_the_rest_read() -> None:
    good = plain(through_pypsrp(messages("get-sendconnector.xml")[0]))
    connectors, unreadable = read_connectors(["Outbound\x1b[31m", good, {"Port": 25}])
    assert [c.name for c in connectors] == ["Outbound to Relay"]
    assert len(unreadable) == 2 and "could not be read" in unreadable[0]


def test_plain_lists_from_other_shapes_still_read() -> None:
    connectors, _ = read_connectors(
        [{"Name": "Old", "SmartHosts": ["a.example"], "AuthenticationCredential": "relay"}]
    )
    assert connectors[0].smart_hosts == ("a.example",)
    assert connectors[0].credential is CredentialState.SET  # a user name means "set", no more


def test_list_xml_refuses_a_dtd_and_bounds_its_size() -> None:
    bomb = '<!DOCTYPE x [<!ENTITY a "aaaa">]><LST><S>&a;</S></LST>'
    with pytest.raises(WireShapeError, match="DTD"):
        parse_list_xml(bomb)
    with pytest.raises(WireShapeError, match="larger than"):
        parse_list_xml("<LST>" + "<S>x</S>" * 700_000 + "</LST>")
    with pytest.raises(WireShapeError, match="well-formed"):
        parse_list_xml("<LST><S>x</LST>")


def test_escapes_decode_surrogate_pairs_and_leave_plain_text() -> None:
    assert decode_string("_xD83D__xDE00_ ok_x000A_") == "\U0001f600 ok\n"
    assert decode_string("no escapes_here") == "no escapes_here"


# --- the lab against the same shapes ---------------------------------------------------------


def shape(element: ET.Element, type_names: dict[str, list[str]]) -> Any:
    """Element kinds, type chains (TNRef resolved) and list element kinds; not values."""
    if element.tag != "Obj":
        return element.tag
    tn = element.find("TN")
    if tn is not None:
        type_names[tn.attrib["RefId"]] = [t.text or "" for t in tn]
        chain = type_names[tn.attrib["RefId"]]
    else:
        ref = element.find("TNRef")
        chain = type_names[ref.attrib["RefId"]] if ref is not None else []
    listed = element.find("LST")
    props = element.find("Props")
    return {
        "types": chain,
        "list": None if listed is None else sorted({child.tag for child in listed}),
        "props": {} if props is None else {p.attrib["N"]: shape(p, type_names) for p in props},
        "to_string": element.find("ToString") is not None,
    }


def lab_wire(obj: Any) -> ET.Element:
    return _Serializer(None).serialize(encode_object(obj))


@pytest.fixture
def org() -> Organization:
    return Organization.open(None, smart_host=("127.0.0.1", 2525), closed_port=2599)


def lab_relay() -> Connector:
    return Connector(
        "Outbound to Relay",
        "0f7e3a52-9c1d-4a4e-8f0e-6d2b1c3a4b5c",
        ["SMTP:tailspintoys.example;1", "SMTP:*.tailspintoys.example;2"],
        ["EX01", "EX02"],
        dns_routing_enabled=False,
        smart_hosts=["relay.tailspintoys.example", "[10.0.0.5]"],
        smart_host_auth_mechanism="BasicAuthRequireTLS",
        credential=LabCredential("relay@tailspintoys.example", "Wire-canary-1"),
        port=587,
        require_tls=True,
        tls_auth_level="EncryptionOnly",
    )


def test_the_labs_connector_has_exchanges_wire_shape(org: Organization) -> None:
    real = shape(messages("get-sendconnector.xml")[0], {})
    ours = shape(lab_wire(connector_object(lab_relay(), org)), {})
    assert ours["types"] == real["types"] and ours["to_string"]
    common = set(real["props"]) & set(ours["props"])
    assert {"SmartHosts", "AddressSpaces", "SourceTransportServers", "Guid", "Port"} <= common
    for name in sorted(common):
        assert ours["props"][name] == real["props"][name], name
    text = ET.tostring(lab_wire(connector_object(lab_relay(), org)), encoding="unicode")
    assert "Wire-canary-1" not in text and "relay@tailspintoys.example" not in text
    assert "Deserialized." not in text


def test_the_labs_queue_has_exchanges_wire_shape(org: Organization) -> None:
    real = shape(messages("get-queue.xml")[0], {})
    queue = Queue("EX01", 4, "0f7e3a52-9c1d-4a4e-8f0e-6d2b1c3a4b5c", "tailspintoys.example")
    queue.status, queue.last_error = "Retry", "454 4.7.0 Temporary authentication failure"
    queue.last_retry_time = datetime.datetime(2026, 12, 1, 9, 30, tzinfo=datetime.UTC)
    ours = shape(lab_wire(queue_object(queue, org)), {})
    assert ours["types"] == real["types"]
    common = set(real["props"]) & set(ours["props"])
    assert {"Identity", "NextHopConnector", "MessageCount", "LastError", "Status"} <= common
    for name in sorted(common - {"NextRetryTime", "FirstRetryTime"}):  # Nil until retried
        assert ours["props"][name] == real["props"][name], name


def test_the_lab_escapes_control_characters_everywhere_as_powershell_does(
    org: Organization,
) -> None:
    """MS-PSRP 2.2.5.3.2: ESC, NUL and "_x" are written _xHHHH_, in ToString too (psrpcore
    leaves ToString raw, which no XML parser reads)."""
    odd = lab_relay()
    odd.name = "Evil\x1b]0;x\x07\x00_x"
    element = lab_wire(connector_object(odd, org))
    assert element.find("ToString").text == "Evil_x001B_]0;x_x0007__x0000__x005F_x"
    back = through_pypsrp(element)
    assert str(back) == odd.name and back.adapted_properties["Name"] == odd.name
