"""Every failure an admin can meet on the way to Exchange, provoked for real against the lab
over HTTP(S), mapped to one clear line with a hint and a non-zero exit code."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from pypsrp.powershell import PowerShell

from remediate.core.errors import ConnectionFailed, RemediateError, RemoteCommandError, UsageError
from remediate.core.plan import Parameter, Step, StepKind
from remediate.lab.faults import Faults
from remediate.lab.server import Lab
from remediate.remote.errors import error_from_records, map_exception, remote_error_from_record
from remediate.remote.session import Session
from tests.lab.lab_helpers import lab_pool, start_lab
from tests.remote_helpers import (  # noqa: F401 - fixtures
    closed_port,
    lab_connection,
    lab_fixture,
    tls_lab_fixture,
)


@pytest.fixture
def faulty(tmp_path: Path) -> Iterator[object]:
    started: list[Lab] = []

    def factory(faults: Faults) -> Lab:
        running = start_lab(tmp_path / str(len(started)), faults=faults)
        started.append(running)
        return running

    try:
        yield factory
    finally:
        for running in started:
            running.stop()


def _open_fails(lab: Lab, password: str | None = None, **overrides: object) -> ConnectionFailed:
    session = Session(lab_connection(lab, **overrides), password or lab.admin_password)
    with pytest.raises(ConnectionFailed) as caught:
        session.open()
    error = caught.value
    assert error.exit_code != 0
    assert "\n" not in str(error)
    assert error.hint
    for secret in (lab.admin_password, password):
        if secret:
            assert secret not in str(error) and secret not in error.hint
    assert not session.is_open
    return error


def test_wrong_password_is_a_401_line(lab: Lab) -> None:
    error = _open_fails(lab, password="Wrong-Passw0rd!")
    assert "refused the user name or password" in str(error)
    assert lab.admin_user in str(error) and "401" in str(error)


def test_lab_refusing_auth_is_the_same_line(faulty) -> None:
    lab = faulty(Faults(refuse_auth=True))
    assert "HTTP 401" in str(_open_fails(lab))


def test_connection_refused(lab: Lab) -> None:
    port = closed_port()
    error = _open_fails(lab, port=port)
    assert str(error) == f"connection refused by 127.0.0.1:{port}: nothing listens there"
    assert "port" in error.hint


def test_wrong_path_hints_at_powershell_and_microsoft_exchange(lab: Lab) -> None:
    error = _open_fails(lab, path="/PowerShel")
    assert "HTTP 404" in str(error)
    assert "/PowerShell" in error.hint and "Microsoft.Exchange" in error.hint


def test_the_servers_default_wsman_endpoint_has_no_exchange_configuration(lab: Lab) -> None:
    # /wsman is the server's own WinRM listener (Microsoft.PowerShell, issue 18); Exchange's
    # configuration is registered only under IIS's /PowerShell (exchange-notes.md).
    error = _open_fails(lab, path="/wsman")
    assert "no session configuration 'Microsoft.Exchange'" in str(error)
    assert "/PowerShell" in error.hint and "Microsoft.Exchange" in error.hint


def test_wrong_configuration_name_hints_the_same(lab: Lab) -> None:
    error = _open_fails(lab, configuration_name="Microsoft.PowerShell")
    assert "'Microsoft.PowerShell'" in str(error) and "resource URI not found" in str(error)
    assert "/PowerShell" in error.hint and "Microsoft.Exchange" in error.hint


def test_https_with_the_lab_ca_passes(tls_lab: Lab) -> None:
    with Session(lab_connection(tls_lab), tls_lab.admin_password) as session:
        assert session.get_connectors()


def test_https_without_the_ca_fails_verification(tls_lab: Lab) -> None:
    error = _open_fails(tls_lab, ca_file=None)
    assert "certificate" in str(error) and "could not be verified" in str(error)
    assert "--ca-file" in error.hint


def test_https_insecure_connects(tls_lab: Lab) -> None:
    connection = lab_connection(tls_lab, ca_file=None, verify=False)
    with Session(connection, tls_lab.admin_password) as session:
        assert session.get_connectors()


def test_http_against_https_port_is_a_dropped_connection(tls_lab: Lab) -> None:
    error = _open_fails(tls_lab, scheme="http")
    assert "closed the connection without an answer" in str(error)


def test_timeout_when_the_server_is_slower_than_the_operation_timeout(faulty) -> None:
    lab = faulty(Faults(latency=2.5))
    error = _open_fails(lab, operation_timeout=0.2)
    assert "did not answer within 0.2 seconds" in str(error)
    assert "--operation-timeout" in error.hint


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        (Faults(http_500_on_request=1), "failed with HTTP 500"),
        (Faults(drop_on_request=1), "closed the connection without an answer"),
        (Faults(wsman_fault_on_request=1), "maximum number of concurrent operations"),
    ],
)
def test_server_failures_while_opening(faulty, faults: Faults, expected: str) -> None:
    assert expected in str(_open_fails(faulty(faults)))


def test_dropped_connection_during_a_step_raises_connection_failed(lab: Lab) -> None:
    step = Step("Get-SendConnector", (), StepKind.READ, reason="test", template="")
    with Session(lab_connection(lab), lab.admin_password) as session:
        assert session.run(step).ok
        lab.faults.faults = Faults(drop_on_request=lab.faults.requests_seen + 1)
        with pytest.raises(ConnectionFailed) as caught:
            session.run(step)
    assert "closed the connection" in str(caught.value)


def test_no_language_refusal_is_mapped(lab: Lab) -> None:
    # remediate never sends script text; bare pypsrp provokes the record Exchange would send
    with lab_pool(lab) as pool:
        ps = PowerShell(pool)
        ps.add_script("Get-SendConnector | Set-SendConnector -Port 587")
        ps.invoke()
    errors = [remote_error_from_record(r) for r in ps.streams.error]
    assert errors[0].category == "ParserError"
    error = error_from_records(errors, "Get-SendConnector")
    assert isinstance(error, RemoteCommandError)
    assert "no-language mode" in str(error) and error.hint


def test_unknown_connector_record(lab: Lab) -> None:
    step = Step(
        "Set-SendConnector",
        (Parameter("Identity", "Nope"), Parameter("Port", 587)),
        StepKind.CHANGE,
        reason="test",
        template="",
    )
    with Session(lab_connection(lab), lab.admin_password) as session:
        result = session.run(step)
    assert not result.ok
    error = error_from_records(result.errors, step.cmdlet)
    assert str(error) == "Send connector 'Nope' was not found"
    assert error.exit_code == RemoteCommandError.exit_code


def test_rule_violation_keeps_the_exchange_message(lab: Lab) -> None:
    step = Step(
        "Set-SendConnector",
        (
            Parameter("Identity", "Outbound to Relay"),  # seeded without a credential
            Parameter("SmartHostAuthMechanism", "BasicAuth"),
        ),
        StepKind.CHANGE,
        reason="test",
        template="",
    )
    with Session(lab_connection(lab), lab.admin_password) as session:
        result = session.run(step)
    assert result.errors, "the lab should refuse BasicAuth without a credential"
    error = error_from_records(result.errors, step.cmdlet)
    assert str(error).startswith("Set-SendConnector: ")
    assert result.errors[0].message in str(error)
    assert "AuthenticationCredential" in str(error)


def test_remediate_errors_pass_through_and_unknown_ones_are_wrapped(lab: Lab) -> None:
    connection = lab_connection(lab)
    original = RemoteCommandError("kept")
    assert map_exception(original, connection) is original
    wrapped = map_exception(ValueError("odd\nsecond line"), connection)
    assert isinstance(wrapped, RemediateError) and isinstance(wrapped, ConnectionFailed)
    assert str(wrapped) == f"the session with {connection.url} failed: ValueError: odd"


# pypsrp's Negotiate auth (pypsrp/negotiate.py, HTTPNegotiateAuth.handle_401) raises on a 401
# that offers another method without releasing that response's connection; the socket is
# only closed when the garbage collector frees the traceback holding it. Not ours to fix:
# collected here, under this test's filter, and that warning alone ignored.
@pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")
@pytest.mark.parametrize("auth", ["kerberos", "ntlm", "negotiate"])
def test_an_auth_method_the_server_does_not_offer(lab: Lab, auth: str) -> None:
    error = _open_fails(lab, auth=auth)
    url = lab_connection(lab).url
    assert str(error) == f"{url} does not offer {auth} authentication (it asks for: Basic)"
    assert "--auth" in error.hint
    del error
    gc.collect()


def test_certificate_auth_needs_https_and_both_files(lab: Lab) -> None:
    session = Session(lab_connection(lab, auth="certificate"), None)
    with pytest.raises(UsageError, match="--auth certificate needs https"):
        session.open()
    assert lab.faults.requests_seen == 0


def test_certificate_auth_the_server_does_not_offer(tls_lab: Lab) -> None:
    """A real client certificate (the lab's own server pair stands in for one) sent to an
    endpoint that only offers Basic: one line naming the method."""
    workdir = tls_lab.ca_file.parent
    error = _open_fails(
        tls_lab,
        auth="certificate",
        certificate_file=workdir / "lab-server.pem",
        certificate_key_file=workdir / "lab-server.key",
    )
    assert "refused the client certificate" in str(error)
    assert "lab-server.pem" in str(error)
    assert tls_lab.faults.requests_seen >= 1


def test_https_against_a_plain_http_port_is_a_tls_handshake_line(lab: Lab) -> None:
    error = _open_fails(lab, scheme="https")
    assert str(error).startswith(f"the TLS handshake with https://{lab.host}:{lab.port}")
    assert "http://" in error.hint
