"""WSMan SOAP envelopes for the lab: parse a request, build responses and faults.

Pure functions over bytes and ElementTree, no I/O and no PSRP: the HTTP server hands a body to
``parse_request`` and sends back what a builder returns. The shapes follow what a Windows
WinRM service answers (MS-WSMV), as far as pypsrp reads them.
"""

from __future__ import annotations

import base64
import functools
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from xml.etree import ElementTree as ET

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "wsmv": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "wsmanfault": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "wst": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "pwsh": "http://schemas.microsoft.com/powershell",
    "xml": "http://www.w3.org/XML/1998/namespace",
}
for _prefix, _uri in NS.items():
    if _prefix != "xml":
        ET.register_namespace(_prefix, _uri)

ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
SHELL_URI = NS["rsp"]
POWERSHELL_URI_PREFIX = "http://schemas.microsoft.com/powershell/"
COMMAND_DONE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
COMMAND_RUNNING = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"
SIGNAL_TERMINATE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate"
SIGNAL_CTRL_C = "powershell/signal/ctrl_c"


class Action(StrEnum):
    GET = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
    CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
    DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
    COMMAND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command"
    SEND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"
    RECEIVE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive"
    SIGNAL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal"

    @property
    def response(self) -> str:
        return f"{self.value}Response"


@dataclass
class WSManFault(Exception):
    """A fault the service answers with (HTTP 500 and a SOAP Fault body)."""

    code: int | None  # None: no WSManFault detail (pypsrp then reports the subcode as code)
    subcode: str
    reason: str
    sender: bool = True  # s:Sender (the request was wrong) or s:Receiver (the service failed)

    def __str__(self) -> str:
        return f"WSMan fault {self.code}: {self.reason}"


# The faults a Windows WinRM service gives for the situations the lab can meet.
def resource_not_found(configuration: str, machine: str) -> WSManFault:
    return WSManFault(
        0x80338000,
        "w:DestinationUnreachable",
        "The WS-Management service cannot process the request. Cannot find the "
        f"{configuration} session configuration in the WSMan: drive on the {machine} computer.",
    )


def access_denied() -> WSManFault:
    """Create on a session configuration the user may not use (its SDDL): WinRM's fault
    with Windows error 5, "Access is denied." (the WSManFault Code 5 / 0x80070005 that
    remoting clients report, for example Microsoft's azure-devtestlab artifact logs)."""
    return WSManFault(5, "w:AccessDenied", "Access is denied. ")


def shell_not_found(shell_id: str) -> WSManFault:
    return WSManFault(
        0x8033805B,
        "w:InvalidSelectors",
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the "
        "shell was not found on the server. Possible causes are: the specified ShellId is "
        "incorrect or the shell no longer exists on the server. Provide the correct ShellId or "
        "create a new shell and retry the operation.",
    )


def operation_timeout() -> WSManFault:
    return WSManFault(
        0x80338029,
        "w:TimedOut",
        "The WS-Management service cannot complete the operation within the time specified in "
        "OperationTimeout.",
        sender=False,
    )


def action_not_supported(action: str) -> WSManFault:
    return WSManFault(
        0x80338011,
        "a:ActionNotSupported",
        f"The WS-Management service cannot process the request. The action {action!r} is not "
        "supported by this resource.",
    )


def invalid_request(detail: str) -> WSManFault:
    return WSManFault(
        0x8033800F,
        "w:SchemaValidationError",
        f"The WS-Management service cannot process the request. {detail}",
    )


def internal_error(detail: str) -> WSManFault:
    return WSManFault(
        0x80004005,
        "w:InternalError",
        f"The WS-Management service cannot process the request. Internal error: {detail}",
        sender=False,
    )


def shell_quota_exceeded(limit: int) -> WSManFault:
    """Create beyond Exchange's PowerShellMaxConcurrency (18 shells per user by default).
    Reason as Exchange 2010 words it (cloudiffic.com, "This user is allowed a maximum of 18
    concurrent shells, which has been exceeded"); code 2150859173 as WinRM sends it with the
    same reason for its own per-user shell quota (test-kitchen issue 656, vagrant issue 7489)."""
    return WSManFault(
        0x803381A5,
        "w:QuotaLimit",
        "The WS-Management service cannot process the request. This user is allowed a maximum "
        f"of {limit} concurrent shells, which has been exceeded. Close existing shells or raise "
        "the quota for this user.",
        sender=False,
    )


def command_quota_exceeded() -> WSManFault:
    """Command beyond MaxConcurrentCommandsPerShell (1000): the shell takes no more commands,
    finished or not (pypsrp issue 148: subcode w:InternalError and this reason after 1000
    sequential commands, where pypsrp shows "Code: w:InternalError": the fault carried no
    WSManFault detail with a numeric code, so the lab sends none either)."""
    return WSManFault(
        None,
        "w:InternalError",
        "The WS-Management service cannot process the request. The maximum number of "
        "concurrent commands per shell has been exceeded. Retry the request later or raise the "
        "Maximum Commands per Shell quota.",
        sender=False,
    )


def quota_exceeded() -> WSManFault:
    """The fault injected by the lab's fault knobs: a transient server-side refusal."""
    return WSManFault(
        0x803381A6,
        "w:QuotaLimit",
        "The WS-Management service cannot process the request. This user is allowed a maximum "
        "number of concurrent operations, which has been exceeded. Close existing operations "
        "for this user, or raise the quota for this user.",
        sender=False,
    )


@dataclass
class Request:
    action: str
    message_id: str
    resource_uri: str
    selectors: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    operation_timeout: float = 20.0
    body: ET.Element | None = None

    @property
    def shell_id(self) -> str | None:
        return self.selectors.get("ShellId")

    @property
    def configuration(self) -> str | None:
        """The session configuration named by a PowerShell resource URI, else None."""
        if self.resource_uri.lower().startswith(POWERSHELL_URI_PREFIX):
            return self.resource_uri[len(POWERSHELL_URI_PREFIX) :]
        return None


@functools.cache
def _clark(path: str) -> str:
    """``s:Header/wsa:Action`` as ``{uri}Header/{uri}Action``: ElementTree finds those
    without sorting a namespace map on every call (a share of the lab's CPU per request)."""
    return "/".join(
        f"{{{NS[prefix]}}}{name}"
        for prefix, _, name in (step.partition(":") for step in path.split("/"))
    )


def _text(parent: ET.Element, path: str) -> str | None:
    node = parent.find(_clark(path))
    return None if node is None else (node.text or "")


def _parse_duration(text: str | None, default: float) -> float:
    """xs:duration as WSMan uses it for OperationTimeout: PT<seconds>S."""
    if not text or not text.startswith("PT") or not text.endswith("S"):
        return default
    try:
        return float(text[2:-1])
    except ValueError:
        return default


def parse_request(data: bytes) -> Request:
    try:
        envelope = ET.fromstring(data)  # noqa: S314 - loopback lab; clients are our own tests
    except ET.ParseError as exc:
        raise invalid_request(f"The request is not well-formed XML: {exc}") from None
    header = envelope.find(_clark("s:Header"))
    if header is None:
        raise invalid_request("The SOAP envelope has no Header.")
    action = _text(header, "wsa:Action")
    message_id = _text(header, "wsa:MessageID")
    resource_uri = _text(header, "wsman:ResourceURI")
    if not action or not message_id or not resource_uri:
        raise invalid_request("Action, MessageID and ResourceURI are required.")
    selectors = {
        s.get("Name", ""): s.text or ""
        for s in header.findall(_clark("wsman:SelectorSet/wsman:Selector"))
    }
    options = {
        o.get("Name", ""): o.text or ""
        for o in header.findall(_clark("wsman:OptionSet/wsman:Option"))
    }
    body = envelope.find(_clark("s:Body"))
    return Request(
        action=action,
        message_id=message_id,
        resource_uri=resource_uri,
        selectors=selectors,
        options=options,
        operation_timeout=_parse_duration(_text(header, "wsman:OperationTimeout"), 20.0),
        body=body[0] if body is not None and len(body) else None,
    )


# --- reading request bodies -------------------------------------------------------------


def creation_xml(request: Request) -> bytes:
    """The PSRP fragments of a Create (session capability + init runspace pool)."""
    node = request.body.find(_clark("pwsh:creationXml")) if request.body is not None else None
    if node is None or not node.text:
        raise invalid_request("A PowerShell shell needs creationXml.")
    return _b64(node.text)


def command_arguments(request: Request) -> tuple[str | None, bytes]:
    """(CommandId asked for by the client, PSRP fragments) of a Command request."""
    body = request.body
    if body is None or body.tag != f"{{{NS['rsp']}}}CommandLine":
        raise invalid_request("A Command request needs a CommandLine.")
    data = b"".join(_b64(a.text or "") for a in body.findall(_clark("rsp:Arguments")))
    return body.get("CommandId"), data


@dataclass
class SendStream:
    name: str
    command_id: str | None
    data: bytes


def send_streams(request: Request) -> list[SendStream]:
    body = request.body
    if body is None or body.tag != f"{{{NS['rsp']}}}Send":
        raise invalid_request("A Send request needs a Send body.")
    return [
        SendStream(s.get("Name", ""), s.get("CommandId"), _b64(s.text or ""))
        for s in body.findall(_clark("rsp:Stream"))
    ]


def receive_command_id(request: Request) -> str | None:
    node = request.body.find(_clark("rsp:DesiredStream")) if request.body is not None else None
    return None if node is None else node.get("CommandId")


def signal(request: Request) -> tuple[str | None, str]:
    body = request.body
    if body is None or body.tag != f"{{{NS['rsp']}}}Signal":
        raise invalid_request("A Signal request needs a Signal body.")
    return body.get("CommandId"), (_text(body, "rsp:Code") or "").strip()


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise invalid_request("A stream is not valid base64.") from None


# --- building responses -----------------------------------------------------------------


def _envelope(request: Request, action: str) -> tuple[ET.Element, ET.Element]:
    s, wsa = NS["s"], NS["wsa"]
    envelope = ET.Element(f"{{{s}}}Envelope", {f"{{{NS['xml']}}}lang": "en-US"})
    header = ET.SubElement(envelope, f"{{{s}}}Header")
    ET.SubElement(header, f"{{{wsa}}}Action").text = action
    ET.SubElement(header, f"{{{wsa}}}MessageID").text = f"uuid:{str(uuid.uuid4()).upper()}"
    ET.SubElement(header, f"{{{wsa}}}To").text = ANONYMOUS
    ET.SubElement(header, f"{{{wsa}}}RelatesTo").text = request.message_id
    body = ET.SubElement(envelope, f"{{{s}}}Body")
    return envelope, body


def _bytes(envelope: ET.Element) -> bytes:
    return ET.tostring(envelope, encoding="utf-8", xml_declaration=False)


@dataclass
class ShellInfo:
    shell_id: str
    resource_uri: str
    owner: str
    client_ip: str
    idle_timeout_s: int = 7200
    state: str = "Connected"


def _shell_element(parent: ET.Element, info: ShellInfo) -> ET.Element:
    rsp = NS["rsp"]
    shell = ET.SubElement(parent, f"{{{rsp}}}Shell")
    for name, value in (
        ("ShellId", info.shell_id),
        ("ResourceUri", info.resource_uri),
        ("Owner", info.owner),
        ("ClientIP", info.client_ip),
        ("IdleTimeOut", f"PT{info.idle_timeout_s}.000S"),
        ("InputStreams", "stdin pr"),
        ("OutputStreams", "stdout"),
        ("State", info.state),
    ):
        ET.SubElement(shell, f"{{{rsp}}}{name}").text = value
    return shell


def create_response(request: Request, info: ShellInfo, endpoint: str) -> bytes:
    envelope, body = _envelope(request, Action.CREATE.response)
    wst, wsa, wsman = NS["wst"], NS["wsa"], NS["wsman"]
    created = ET.SubElement(body, f"{{{wst}}}ResourceCreated")
    ET.SubElement(created, f"{{{wsa}}}Address").text = endpoint
    params = ET.SubElement(created, f"{{{wsa}}}ReferenceParameters")
    ET.SubElement(params, f"{{{wsman}}}ResourceURI").text = info.resource_uri
    selectors = ET.SubElement(params, f"{{{wsman}}}SelectorSet")
    ET.SubElement(selectors, f"{{{wsman}}}Selector", Name="ShellId").text = info.shell_id
    _shell_element(body, info)
    return _bytes(envelope)


def get_shell_response(request: Request, info: ShellInfo) -> bytes:
    envelope, body = _envelope(
        request, "http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse"
    )
    _shell_element(body, info)
    return _bytes(envelope)


# The replies sent per command (Command, Receive, Send, Signal, Delete) are written as text:
# the same bytes ElementTree writes for the trees the other replies build (namespace
# declarations sorted by prefix, empty elements as "<x />"), at a fraction of its cost
# (issue 15; tests/lab/test_wsman_text.py compares them).
_DECLARATIONS = {
    shell: " ".join(
        f'xmlns:{p}="{NS[p]}"' for p in (("rsp", "s", "wsa") if shell else ("s", "wsa"))
    )
    for shell in (True, False)
}


def _reply(request: Request, action: str, body: str, *, shell: bool = True) -> bytes:
    """The envelope ``_envelope`` builds, around ``body`` (text; "" for an empty Body)."""
    message_id = str(uuid.uuid4()).upper()
    return (
        f'<s:Envelope {_DECLARATIONS[shell]} xml:lang="en-US"><s:Header>'
        f"<wsa:Action>{_cdata(action)}</wsa:Action>"
        f"<wsa:MessageID>uuid:{message_id}</wsa:MessageID><wsa:To>{ANONYMOUS}</wsa:To>"
        f"<wsa:RelatesTo>{_cdata(request.message_id)}</wsa:RelatesTo></s:Header>"
        + (f"<s:Body>{body}</s:Body>" if body else "<s:Body />")
        + "</s:Envelope>"
    ).encode("utf-8")


def _cdata(text: str) -> str:
    """Element text as ElementTree escapes it."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attribute(text: str) -> str:
    """An attribute value as ElementTree escapes it."""
    text = _cdata(text).replace('"', "&quot;").replace("\r", "&#13;")
    return text.replace("\n", "&#10;").replace("\t", "&#09;")


def command_response(request: Request, command_id: str) -> bytes:
    body = f"<rsp:CommandResponse><rsp:CommandId>{_cdata(command_id)}</rsp:CommandId>"
    return _reply(request, Action.COMMAND.response, body + "</rsp:CommandResponse>")


def empty_response(request: Request, action: Action) -> bytes:
    """Send, Signal and Delete answer with an (almost) empty body."""
    if action is Action.SEND:
        return _reply(request, action.response, "<rsp:SendResponse />")
    if action is Action.SIGNAL:
        return _reply(request, action.response, "<rsp:SignalResponse />")
    return _reply(request, action.response, "", shell=False)


def receive_response(
    request: Request, chunks: list[bytes], command_id: str | None, done: bool
) -> bytes:
    """``chunks`` are PSRP fragments already packed; one Stream element per chunk."""
    stream = '<rsp:Stream Name="stdout"'
    if command_id:
        stream += f' CommandId="{_attribute(command_id)}"'
    parts = []
    for chunk in chunks:
        text = base64.b64encode(chunk).decode("ascii")
        parts.append(f"{stream}>{text}</rsp:Stream>" if text else f"{stream} />")
    if command_id:
        state = COMMAND_DONE if done else COMMAND_RUNNING
        parts.append(f'<rsp:CommandState CommandId="{_attribute(command_id)}" State="{state}"')
        parts.append("><rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState>" if done else " />")
    inner = "".join(parts)
    body = (
        f"<rsp:ReceiveResponse>{inner}</rsp:ReceiveResponse>"
        if inner
        else "<rsp:ReceiveResponse />"
    )
    return _reply(request, Action.RECEIVE.response, body)


def fault_response(request: Request | None, fault: WSManFault, machine: str) -> bytes:
    """The SOAP Fault body; ``request`` is None when the request itself could not be read."""
    s, wsman_fault = NS["s"], NS["wsmanfault"]
    action = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
    if request is not None:
        envelope, body = _envelope(request, action)
    else:
        envelope = ET.Element(f"{{{s}}}Envelope")
        ET.SubElement(envelope, f"{{{s}}}Header")
        body = ET.SubElement(envelope, f"{{{s}}}Body")
    fault_el = ET.SubElement(body, f"{{{s}}}Fault")
    code = ET.SubElement(fault_el, f"{{{s}}}Code")
    ET.SubElement(code, f"{{{s}}}Value").text = "s:Sender" if fault.sender else "s:Receiver"
    sub = ET.SubElement(code, f"{{{s}}}Subcode")
    ET.SubElement(sub, f"{{{s}}}Value").text = fault.subcode
    reason = ET.SubElement(fault_el, f"{{{s}}}Reason")
    ET.SubElement(reason, f"{{{s}}}Text", {f"{{{NS['xml']}}}lang": "en-US"}).text = fault.reason
    if fault.code is None:
        return _bytes(envelope)
    detail = ET.SubElement(fault_el, f"{{{s}}}Detail")
    wsman_el = ET.SubElement(
        detail, f"{{{wsman_fault}}}WSManFault", Code=str(fault.code), Machine=machine
    )
    ET.SubElement(wsman_el, f"{{{wsman_fault}}}Message").text = fault.reason
    return _bytes(envelope)
