"""The lab's protocol half (WSMan over HTTP, PSRP runspace pools) driven by bare pypsrp 0.9.1.

The Exchange half is replaced here by ``RecordingRunner``, a tiny CommandRunner defined in
this file, so that these tests pin the protocol layer alone: what a cmdlet receives and how
its answers, host lines and errors reach a real pypsrp client over real HTTP. The tests with
the real ExchangeShell are in test_pypsrp_e2e.py.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pypsrp.complex_objects import PSCredential
from pypsrp.exceptions import AuthenticationError, WinRMTransportError, WSManFaultError
from pypsrp.host import PSHost, PSHostUserInterface
from pypsrp.powershell import PowerShell, PSInvocationState, RunspacePool
from pypsrp.wsman import WSMan

from remediate.lab.api import CmdletError, CommandCall, HostSink, LabObject
from remediate.lab.auth import AuthConfig
from remediate.lab.endpoint import Endpoint
from remediate.lab.faults import FaultInjector, Faults
from remediate.lab.http_server import LabHTTPServer
from tests.lab.lab_helpers import wire_props

USER = "administrator@contoso.lab"
PASSWORD = "lab-password-1"


class RecordingRunner:
    """Stands in for the Exchange half: records calls, answers a few made-up cmdlets."""

    def __init__(self) -> None:
        self.calls: list[CommandCall] = []

    def invoke(
        self, call: CommandCall, pipeline_input: list[LabObject], host: HostSink
    ) -> list[LabObject]:
        self.calls.append(call)
        if call.name == "Get-Thing":
            return [
                LabObject(
                    ["Contoso.Thing", "Contoso.ThingBase"],
                    {"Name": "Outbound", "Port": 25, "Hosts": ["a", "b"], "Enabled": False},
                    "Outbound",
                )
            ]
        if call.name == "Set-Thing":
            host.write_host("What if: Setting thing Outbound.")
            host.write_warning("The thing was set.")
            return []
        if call.name == "Count-Input":
            return [LabObject(["Contoso.Count"], {"Count": len(pipeline_input)}, "count")]
        if call.name == "Crash-Thing":
            raise ZeroDivisionError("a bug in the Exchange half")
        if call.name == "Soft-Fail":
            raise CmdletError(
                "Soft failure.", "SoftFail,Soft-Fail", "InvalidOperation", terminating=False
            )
        raise CmdletError(
            f"The term '{call.name}' is not recognized as the name of a cmdlet, function, "
            "script file, or operable program.",
            "CommandNotFoundException",
            "ObjectNotFound",
            "System.Management.Automation.CommandNotFoundException",
            target=call.name,
        )


@dataclass
class ToyLab:
    port: int
    endpoint: Endpoint
    faults: FaultInjector
    runners: list[RecordingRunner] = field(default_factory=list)

    def wsman(self, password: str = PASSWORD, path: str = "PowerShell") -> WSMan:
        return WSMan(
            "127.0.0.1",
            port=self.port,
            path=path,
            ssl=False,
            auth="basic",
            username=USER,
            password=password,
            encryption="never",
            connection_timeout=5,
            reconnection_retries=0,
        )

    def pool(self, **kwargs: object) -> RunspacePool:
        return RunspacePool(self.wsman(), configuration_name="Microsoft.Exchange", **kwargs)


def _serve(faults: Faults, sleep=None, tls: ssl.SSLContext | None = None) -> Iterator[ToyLab]:
    injector = FaultInjector(faults, sleep) if sleep else FaultInjector(faults)
    runners: list[RecordingRunner] = []

    def factory() -> RecordingRunner:
        runner = RecordingRunner()
        runners.append(runner)
        return runner

    endpoint = Endpoint(factory, machine="EX01", url="http://127.0.0.1/PowerShell", owner=USER)
    server = LabHTTPServer(
        ("127.0.0.1", 0),
        endpoint,
        auth=AuthConfig.basic(USER, PASSWORD),
        faults=injector,
        tls=tls,
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield ToyLab(server.server_address[1], endpoint, injector, runners)
    finally:
        server.shutdown()
        server.server_close()
        endpoint.close()


@pytest.fixture
def lab() -> Iterator[ToyLab]:
    yield from _serve(Faults())


def _host() -> PSHost:
    return PSHost(None, None, False, "lab-test", None, PSHostUserInterface(), None)


def test_pool_opens_and_returns_deserialized_objects(lab: ToyLab) -> None:
    with lab.pool() as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-Thing")
        (thing,) = ps.invoke()
    assert not ps.had_errors
    # the type names as the server sent them: PowerShell's own client adds "Deserialized."
    assert thing.types == ["Contoso.Thing", "Contoso.ThingBase", "System.Object"]
    assert wire_props(thing) == {
        "Name": "Outbound",
        "Port": 25,
        "Hosts": ["a", "b"],
        "Enabled": False,
    }
    assert str(thing) == "Outbound"


def test_parameters_arrive_typed_and_credential_decrypted(lab: ToyLab) -> None:
    with lab.pool() as pool:
        pool.exchange_keys()
        ps = PowerShell(pool)
        ps.add_cmdlet("Set-Thing").add_parameter(
            "AuthenticationCredential",
            PSCredential(username="relay@contoso.com", password="S3cret'’"),
        )
        ps.add_parameter("Port", 587).add_parameter("Confirm", False).add_parameter("WhatIf")
        ps.add_parameter("SmartHosts", ["smtp.relay.example", "backup.relay.example"])
        ps.add_argument("positional")
        ps.invoke()
    (call,) = lab.runners[0].calls
    assert call.name == "Set-Thing"
    names = [name for name, _ in call.parameters]
    assert names == ["AuthenticationCredential", "Port", "Confirm", "WhatIf", "SmartHosts", None]
    values = dict(call.parameters)
    credential = values["AuthenticationCredential"]
    assert (credential.username, credential.password) == ("relay@contoso.com", "S3cret'’")
    assert "S3cret" not in repr(credential)
    assert values["Port"] == 587 and type(values["Port"]) is int
    assert values["Confirm"] is False
    assert values["WhatIf"] is None
    assert values["SmartHosts"] == ["smtp.relay.example", "backup.relay.example"]
    assert values[None] == "positional"


def test_host_lines_reach_the_client_host_and_warnings_have_text(lab: ToyLab) -> None:
    host = _host()
    with lab.pool(host=host) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Set-Thing")
        ps.invoke()
    assert host.ui.stdout == ["What if: Setting thing Outbound.\r\n"]
    assert [str(w) for w in ps.streams.warning] == ["The thing was set."]
    assert ps.state == PSInvocationState.COMPLETED


def test_host_lines_go_to_information_stream_without_a_client_host(lab: ToyLab) -> None:
    with lab.pool() as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Set-Thing")
        ps.invoke()
    assert [i.message_data for i in ps.streams.information] == ["What if: Setting thing Outbound."]


def test_unknown_cmdlet_fails_pipeline_with_powershell_shaped_record(lab: ToyLab) -> None:
    with lab.pool() as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-Nothing")
        assert ps.invoke() == []
    assert ps.had_errors
    assert ps.state == PSInvocationState.FAILED
    (record,) = ps.streams.error
    assert record.fq_error == "CommandNotFoundException"
    assert record.reason == "CommandNotFoundException"
    assert record.message == "ObjectNotFound: (Get-Nothing:String) [], CommandNotFoundException"
    assert str(record).startswith("The term 'Get-Nothing' is not recognized")
    assert record.exception.types[0] == "System.Management.Automation.CommandNotFoundException"
    assert record.target_object == "Get-Nothing"


def test_non_terminating_error_goes_to_error_stream_and_pipeline_continues(lab: ToyLab) -> None:
    with lab.pool() as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Soft-Fail").add_statement().add_cmdlet("Get-Thing")
        output = ps.invoke()
    assert [str(o) for o in output] == ["Outbound"]
    assert ps.state == PSInvocationState.COMPLETED
    assert not ps.had_errors
    assert [str(e) for e in ps.streams.error] == ["Soft failure."]
    assert ps.streams.error[0].message == "InvalidOperation: (:) [Soft-Fail], RuntimeException"


def test_output_flows_down_a_pipeline(lab: ToyLab) -> None:
    with lab.pool() as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-Thing").add_cmdlet("Count-Input")
        (count,) = ps.invoke()
    assert count.adapted_properties["Count"] == 1


def test_client_pipeline_input_is_refused_clearly(lab: ToyLab) -> None:
    with lab.pool() as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Count-Input")
        ps.invoke(input=["a", "b"])
    assert ps.state == PSInvocationState.FAILED
    assert [e.fq_error for e in ps.streams.error] == ["InputObjectNotBound"]
    assert lab.runners[0].calls == []


def test_script_text_is_refused_as_exchange_does(lab: ToyLab) -> None:
    with lab.pool() as pool:
        ps = PowerShell(pool)
        ps.add_script("Get-Thing | Format-List")
        assert ps.invoke() == []
    assert ps.had_errors and ps.state == PSInvocationState.FAILED
    (record,) = ps.streams.error
    assert str(record) == (
        "The syntax is not supported by this runspace. This can occur if the runspace is in "
        "no-language mode."
    )
    assert record.fq_error == "ScriptsNotAllowed"
    assert record.reason == "ParseException"
    assert lab.runners[0].calls == []


def test_unknown_configuration_gets_the_wsman_fault(lab: ToyLab) -> None:
    pool = RunspacePool(lab.wsman(), configuration_name="Microsoft.PowerShell")
    with pytest.raises(WSManFaultError) as info:
        pool.open()
    assert info.value.code == 0x80338000
    assert "Cannot find the Microsoft.PowerShell session configuration" in info.value.reason


def test_other_http_path_is_404(lab: ToyLab) -> None:
    pool = RunspacePool(lab.wsman(path="wsman"), configuration_name="Microsoft.Exchange")
    with pytest.raises(WinRMTransportError) as info:
        pool.open()
    assert info.value.code == 404


def test_wrong_password_is_401_with_basic_challenge(lab: ToyLab) -> None:
    pool = RunspacePool(lab.wsman(password="wrong"), configuration_name="Microsoft.Exchange")
    with pytest.raises(AuthenticationError):
        pool.open()
    response = requests.post(f"http://127.0.0.1:{lab.port}/PowerShell", data=b"<x/>", timeout=5)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert lab.endpoint.shell_count == 0


def test_is_alive_and_delete(lab: ToyLab) -> None:
    pool = lab.pool()
    pool.open()
    assert pool.is_alive()
    assert lab.endpoint.shell_count == 1
    pool.close()
    assert lab.endpoint.shell_count == 0


def test_is_alive_false_once_the_shell_is_gone(lab: ToyLab) -> None:
    pool = lab.pool()
    pool.open()
    lab.endpoint.close()
    assert not pool.is_alive()


def test_twenty_concurrent_clients_each_get_their_own_shell(lab: ToyLab) -> None:
    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def client(n: int) -> None:
        try:
            with lab.pool() as pool:
                for _ in range(2):
                    ps = PowerShell(pool)
                    ps.add_cmdlet("Get-Thing").add_parameter("Identity", f"client-{n}")
                    results.setdefault(n, []).extend(str(o) for o in ps.invoke())
        except BaseException as exc:  # reported below
            errors.append(exc)

    # Exchange allows one user 18 shells (PowerShellMaxConcurrency; its own test is below):
    # twenty at once would exceed it whenever, on a loaded machine, all of them overlap
    lab.endpoint.max_shells = 20
    threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert results == {n: ["Outbound", "Outbound"] for n in range(20)}
    assert len(lab.runners) == 20
    for runner in lab.runners:  # each shell saw only its own client's calls
        identities = {dict(c.parameters)["Identity"] for c in runner.calls}
        assert len(identities) == 1 and len(runner.calls) == 2


# --- fault injection --------------------------------------------------------------------


def _faulty(faults: Faults, sleep=None) -> Iterator[ToyLab]:
    return _serve(faults, sleep)


def test_latency_is_applied_to_every_request() -> None:
    # The sleep is recorded rather than timed: no timing assertions in tests.
    slept: list[float] = []
    for lab in _faulty(Faults(latency=0.2), sleep=slept.append):
        with lab.pool() as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet("Get-Thing")
            assert len(ps.invoke()) == 1
        assert slept == [0.2] * lab.faults.requests_seen
        assert lab.faults.requests_seen >= 4


def test_connection_dropped_on_nth_request_then_recovers() -> None:
    for lab in _faulty(Faults(drop_on_request=1)):
        with pytest.raises(requests.exceptions.ConnectionError):
            lab.pool().open()
        with lab.pool() as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet("Get-Thing")
            assert len(ps.invoke()) == 1


def test_http_500_on_nth_request() -> None:
    for lab in _faulty(Faults(http_500_on_request=1)):
        with pytest.raises(WinRMTransportError) as info:
            lab.pool().open()
        assert info.value.code == 500
        with lab.pool() as pool:
            assert pool.is_alive()


def test_wsman_fault_on_nth_request() -> None:
    for lab in _faulty(Faults(wsman_fault_on_request=1)):
        with pytest.raises(WSManFaultError) as info:
            lab.pool().open()
        assert info.value.code == 0x803381A6
        assert "maximum number of concurrent operations" in info.value.reason


def test_refused_authentication_even_with_the_right_password() -> None:
    for lab in _faulty(Faults(refuse_auth=True)):
        with pytest.raises(AuthenticationError):
            lab.pool().open()


def test_runspace_limits_can_be_changed_on_an_open_pool(lab: ToyLab) -> None:
    # pypsrp writes the call id as "CI" in these messages; the lab must still answer.
    with lab.pool() as pool:
        pool.max_runspaces = 3
        pool.min_runspaces = 2
        assert (pool.min_runspaces, pool.max_runspaces) == (2, 3)
        assert pool.get_available_runspaces() == 1


def test_a_bug_in_a_cmdlet_fails_the_pipeline_instead_of_hanging(lab: ToyLab) -> None:
    with lab.pool() as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Crash-Thing")
        ps.invoke()
        assert ps.state == PSInvocationState.FAILED
        assert [e.fq_error for e in ps.streams.error] == ["LabInternalError"]
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-Thing")
        assert len(ps.invoke()) == 1  # the shell survives


# --- HTTPS ------------------------------------------------------------------------------


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1, written with cryptography for this test only
    (the Lab itself issues its certificates from the lab CA in certs.py)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_https_with_a_trusted_certificate(tmp_path: Path) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    for lab in _serve(Faults(), tls=context):
        wsman = WSMan(
            "127.0.0.1",
            port=lab.port,
            path="PowerShell",
            ssl=True,
            auth="basic",
            username=USER,
            password=PASSWORD,
            encryption="never",
            cert_validation=str(cert_file),
            reconnection_retries=0,
        )
        with RunspacePool(wsman, configuration_name="Microsoft.Exchange") as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet("Get-Thing")
            assert [str(o) for o in ps.invoke()] == ["Outbound"]
        untrusted = requests.Session()
        with pytest.raises(requests.exceptions.SSLError):
            untrusted.post(f"https://127.0.0.1:{lab.port}/PowerShell", data=b"", timeout=5)
        # a plain-HTTP client on the TLS port does not hang the server
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.post(f"http://127.0.0.1:{lab.port}/PowerShell", data=b"", timeout=5)


# --- WSMan edge cases, through raw HTTP ---------------------------------------------------


def _post(lab: ToyLab, body: bytes) -> requests.Response:
    return requests.post(
        f"http://127.0.0.1:{lab.port}/PowerShell",
        data=body,
        auth=(USER, PASSWORD),
        headers={"Content-Type": "application/soap+xml;charset=UTF-8"},
        timeout=5,
    )


def _envelope(action: str, resource_uri: str, shell_id: str | None, body: str = "") -> bytes:
    selector = (
        f'<w:SelectorSet><w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>'
        if shell_id
        else ""
    )
    return (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
        'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">'
        f"<s:Header><a:Action>{action}</a:Action><a:MessageID>uuid:1</a:MessageID>"
        f"<w:ResourceURI>{resource_uri}</w:ResourceURI>{selector}"
        "<w:OperationTimeout>PT1S</w:OperationTimeout></s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _fault_code(response: requests.Response) -> int:
    return WSMan._parse_wsman_fault(response.text).code


def test_malformed_xml_gets_a_wsman_fault(lab: ToyLab) -> None:
    response = _post(lab, b"<not xml")
    assert response.status_code == 500
    assert _fault_code(response) == 0x8033800F


def test_unknown_shell_gets_the_shell_not_found_fault(lab: ToyLab) -> None:
    body = _envelope(
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive",
        "http://schemas.microsoft.com/powershell/Microsoft.Exchange",
        "6B3F4C5E-0000-4000-8000-000000000000",
        "<rsp:Receive><rsp:DesiredStream>stdout</rsp:DesiredStream></rsp:Receive>",
    )
    response = _post(lab, body)
    assert response.status_code == 500
    assert _fault_code(response) == 0x8033805B
    assert "RelatesTo>uuid:1<" in response.text


def test_receive_on_a_finished_pipeline_after_terminate_is_refused(lab: ToyLab) -> None:
    with lab.pool() as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-Thing")
        ps.invoke()
        ps.close()  # Signal terminate: the server forgets the command
        with pytest.raises(WSManFaultError):
            pool.shell.receive("stdout", command_id=ps._command_id)


def test_unsupported_action_on_a_shell_gets_a_fault(lab: ToyLab) -> None:
    with lab.pool() as pool:
        body = _envelope(
            "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate",
            "http://schemas.microsoft.com/powershell/Microsoft.Exchange",
            pool.shell.id,
        )
        response = _post(lab, body)
    assert response.status_code == 500
    assert _fault_code(response) == 0x80338011
