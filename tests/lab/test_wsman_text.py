"""The WSMan replies the lab sends per command (Command, Receive, Send, Signal, Delete) are
written as text (issue 15: ElementTree's serialization was a share of the lab's CPU per
command); they are the bytes ElementTree writes for the same trees, built here as the lab
built them before (MS-WSMV's shapes, as a Windows WinRM service answers)."""

from __future__ import annotations

import base64
import re
import uuid
from xml.etree import ElementTree as ET

import pytest

from remediate.lab import wsman
from remediate.lab.wsman import NS, Action, Request

_ID = re.compile(rb"uuid:[0-9A-F-]{36}</wsa:MessageID>")


def _same_id(data: bytes) -> bytes:
    return _ID.sub(b"uuid:X</wsa:MessageID>", data)


def _tree(request: Request, action: str) -> tuple[ET.Element, ET.Element]:
    s, wsa = NS["s"], NS["wsa"]
    envelope = ET.Element(f"{{{s}}}Envelope", {f"{{{NS['xml']}}}lang": "en-US"})
    header = ET.SubElement(envelope, f"{{{s}}}Header")
    ET.SubElement(header, f"{{{wsa}}}Action").text = action
    ET.SubElement(header, f"{{{wsa}}}MessageID").text = f"uuid:{str(uuid.uuid4()).upper()}"
    ET.SubElement(header, f"{{{wsa}}}To").text = wsman.ANONYMOUS
    ET.SubElement(header, f"{{{wsa}}}RelatesTo").text = request.message_id
    return envelope, ET.SubElement(envelope, f"{{{s}}}Body")


def _bytes(envelope: ET.Element) -> bytes:
    return ET.tostring(envelope, encoding="utf-8", xml_declaration=False)


def _request(message_id: str = "uuid:1234") -> Request:
    return Request(Action.RECEIVE.value, message_id, "http://schemas.microsoft.com/powershell/x")


ODD = 'a&b<c>"d\r\n\te'


@pytest.mark.parametrize("message_id", ["uuid:1234", ODD])
@pytest.mark.parametrize("command_id", ["C0FFEE", ODD])
def test_command_response(message_id: str, command_id: str) -> None:
    request = _request(message_id)
    envelope, body = _tree(request, Action.COMMAND.response)
    response = ET.SubElement(body, f"{{{NS['rsp']}}}CommandResponse")
    ET.SubElement(response, f"{{{NS['rsp']}}}CommandId").text = command_id
    assert _same_id(wsman.command_response(request, command_id)) == _same_id(_bytes(envelope))


@pytest.mark.parametrize("action", [Action.SEND, Action.SIGNAL, Action.DELETE])
def test_empty_response(action: Action) -> None:
    request = _request()
    envelope, body = _tree(request, action.response)
    if action is Action.SEND:
        ET.SubElement(body, f"{{{NS['rsp']}}}SendResponse")
    elif action is Action.SIGNAL:
        ET.SubElement(body, f"{{{NS['rsp']}}}SignalResponse")
    assert _same_id(wsman.empty_response(request, action)) == _same_id(_bytes(envelope))


@pytest.mark.parametrize("chunks", [[], [b"\x00\x01psrp"], [b"a" * 3000, b"b", b""]])
@pytest.mark.parametrize("command_id", [None, "", "C0FFEE", ODD])
@pytest.mark.parametrize("done", [True, False])
def test_receive_response(chunks: list[bytes], command_id: str | None, done: bool) -> None:
    request = _request(ODD)
    envelope, body = _tree(request, Action.RECEIVE.response)
    rsp = NS["rsp"]
    response = ET.SubElement(body, f"{{{rsp}}}ReceiveResponse")
    attrs = {"Name": "stdout"}
    if command_id:
        attrs["CommandId"] = command_id
    for chunk in chunks:
        stream = ET.SubElement(response, f"{{{rsp}}}Stream", attrs)
        stream.text = base64.b64encode(chunk).decode("ascii")
    if command_id:
        state = ET.SubElement(
            response,
            f"{{{rsp}}}CommandState",
            {
                "CommandId": command_id,
                "State": wsman.COMMAND_DONE if done else wsman.COMMAND_RUNNING,
            },
        )
        if done:
            ET.SubElement(state, f"{{{rsp}}}ExitCode").text = "0"
    expected = _same_id(_bytes(envelope))
    assert _same_id(wsman.receive_response(request, chunks, command_id, done)) == expected
