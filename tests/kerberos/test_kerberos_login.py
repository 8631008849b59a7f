"""The production login end to end: the installed ``remediate`` against the lab behind a real
MIT KDC, with a relay recording the wire (tests/kerberos/wire.py).

Every successful run is checked on the wire: the lab's first answer is 401 with its offer,
the client answers with the scheme expected, and no message in either direction carries
plaintext SOAP: every body is multipart/encrypted with the label of that scheme.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from remediate.lab.server import Lab
from tests.kdc import ADMIN, ADMIN_PRINCIPAL, KDC, NETBIOS, REALM
from tests.kerberos.conftest import EXE, OPERATOR
from tests.kerberos.wire import Recorder

pytestmark = pytest.mark.e2e

KRB5_OID = bytes.fromhex("2a864886f712010202")  # 1.2.840.113554.1.2.2, Kerberos 5
NTLM_SIGNATURE = b"NTLMSSP\x00"
KERBEROS_LABEL = "application/HTTP-Kerberos-session-encrypted"
SPNEGO_LABEL = "application/HTTP-SPNEGO-session-encrypted"


def remediate(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), *args], input=stdin, env=env, capture_output=True, text=True, timeout=90,
        check=False,
    )  # fmt: skip


def connect_test(
    env: dict[str, str], url: str, auth: str, *extra: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    args = ["connect", "test", "--server", url, "--auth", auth, "--connect-timeout", "10", *extra]
    if stdin is not None:
        args.append("--password-stdin")
    return remediate(env, *args, stdin=stdin or "")


def url(relay: Recorder | Lab, host: str = "localhost") -> str:
    return f"http://{host}:{relay.port}/PowerShell"


def assert_connected(done: subprocess.CompletedProcess[str], secret: str | None = None) -> None:
    assert done.returncode == 0, done.stderr
    assert "Get-SendConnector returned 7 connector(s)" in done.stdout
    assert "Traceback" not in done.stderr
    if secret:
        assert secret not in done.stdout + done.stderr


def wire_summary(relay: Recorder, label: str) -> dict[str, object]:
    """What the wire shows; asserts that no body ever was plaintext SOAP."""
    schemes: set[str] = set()
    tokens: list[bytes] = []
    offers: set[str] = set()
    encrypted = 0
    for connection in relay.connections:
        for request, response in connection.exchanges():
            authorization = request.header("authorization")
            if authorization:
                schemes.add(authorization.split(" ", 1)[0])
                tokens.append(request.token("authorization") or b"")
            for message in (request, response):
                if message is None:
                    continue
                if message.body:
                    kind = message.header("content-type") or ""
                    assert kind.startswith("multipart/encrypted"), kind
                    assert f'protocol="{label}"' in kind, kind
                    assert b"soap-envelope" not in message.body
                    assert b"Envelope" not in message.body
                    encrypted += 1
            if response is not None and response.status == 401 and not authorization:
                offers.add(response.header("www-authenticate") or "")
    assert encrypted >= 6, "a session sends many SOAP messages; all of them encrypted"
    mechanism = "ntlm" if any(NTLM_SIGNATURE in t for t in tokens) else "?"
    if mechanism != "ntlm" and any(KRB5_OID in t for t in tokens):
        mechanism = "kerberos"
    return {"schemes": schemes, "offers": offers, "mechanism": mechanism, "bodies": encrypted}


# --- the offers, a password ---------------------------------------------------------------


def test_kerberos_offer_with_a_password(kerberos_lab: Lab, kdc: KDC, client_env, record) -> None:
    relay = record(kerberos_lab)
    password = kdc.passwords[ADMIN_PRINCIPAL]
    done = connect_test(
        client_env, url(relay), "kerberos", "--user", ADMIN_PRINCIPAL, stdin=password + "\n"
    )
    assert_connected(done, password)
    wire = wire_summary(relay, KERBEROS_LABEL)
    assert wire["offers"] == {"Kerberos"}
    assert wire["schemes"] == {"Kerberos"} and wire["mechanism"] == "kerberos"


def test_negotiate_offer_with_a_password(negotiate_lab: Lab, kdc: KDC, client_env, record) -> None:
    relay = record(negotiate_lab)
    password = kdc.passwords[ADMIN_PRINCIPAL]
    done = connect_test(
        client_env, url(relay), "negotiate", "--user", ADMIN_PRINCIPAL, stdin=password + "\n"
    )
    assert_connected(done, password)
    wire = wire_summary(relay, SPNEGO_LABEL)
    assert wire["offers"] == {"Negotiate"}
    assert wire["schemes"] == {"Negotiate"} and wire["mechanism"] == "kerberos"


def test_auth_kerberos_against_a_negotiate_offer(
    negotiate_lab: Lab, kdc: KDC, client_env, record
) -> None:
    relay = record(negotiate_lab)
    password = kdc.passwords[ADMIN_PRINCIPAL]
    done = connect_test(
        client_env, url(relay), "kerberos", "--user", ADMIN_PRINCIPAL, stdin=password + "\n"
    )
    assert_connected(done, password)
    assert wire_summary(relay, SPNEGO_LABEL)["mechanism"] == "kerberos"


@pytest.mark.parametrize(
    "user", [f"{NETBIOS}\\{ADMIN}", f"{ADMIN}@{REALM.lower()}", f"{REALM}\\{ADMIN}"]
)
def test_domain_user_and_upn_forms(kerberos_lab: Lab, kdc: KDC, client_env, user: str) -> None:
    """``LAB\\administrator`` once became ``LABadministrator@LAB.TEST``."""
    password = kdc.passwords[ADMIN_PRINCIPAL]
    done = connect_test(client_env, url(kerberos_lab), "kerberos", "--user", user, stdin=password)
    assert_connected(done, password)


# --- tickets: kinit, no password ------------------------------------------------------------


@pytest.fixture
def operator_ticket(kdc: KDC, client_env: dict[str, str]) -> dict[str, str]:
    """``kinit operator@LAB.TEST`` into this run's ticket cache."""
    kdc.kinit(OPERATOR, Path(client_env["KRB5CCNAME"].removeprefix("FILE:")))
    return client_env


def test_ticket_without_user(kerberos_lab: Lab, operator_ticket, record) -> None:
    relay = record(kerberos_lab)
    assert_connected(connect_test(operator_ticket, url(relay), "kerberos"))
    assert wire_summary(relay, KERBEROS_LABEL)["mechanism"] == "kerberos"


def test_ticket_with_user_and_no_password(kerberos_lab: Lab, operator_ticket) -> None:
    """No keyring entry, no stdin: the ticket for that user is found and used."""
    done = connect_test(operator_ticket, url(kerberos_lab), "kerberos", "--user", OPERATOR)
    assert_connected(done)


def test_ticket_with_an_empty_stdin_line(negotiate_lab: Lab, operator_ticket, record) -> None:
    relay = record(negotiate_lab)
    done = connect_test(operator_ticket, url(relay), "negotiate", "--user", OPERATOR, stdin="\n")
    assert_connected(done)
    assert wire_summary(relay, SPNEGO_LABEL)["mechanism"] == "kerberos"


# --- NTLM and the SPN -----------------------------------------------------------------------


def test_ntlm_fallback_under_negotiate(negotiate_lab: Lab, kdc: KDC, client_env, record) -> None:
    """No SPN host/127.0.0.1 in the KDC: Negotiate falls back to NTLM, still encrypted."""
    relay = record(negotiate_lab)
    password = kdc.passwords[ADMIN_PRINCIPAL]
    done = connect_test(
        client_env, url(relay, "127.0.0.1"), "negotiate", "--user", f"{NETBIOS}\\{ADMIN}",
        stdin=password,
    )  # fmt: skip
    assert_connected(done, password)
    wire = wire_summary(relay, SPNEGO_LABEL)
    assert wire["mechanism"] == "ntlm" and wire["schemes"] == {"Negotiate"}


def test_auth_ntlm_against_negotiate(negotiate_lab: Lab, kdc: KDC, client_env, record) -> None:
    relay = record(negotiate_lab)
    password = kdc.passwords[ADMIN_PRINCIPAL]
    done = connect_test(client_env, url(relay), "ntlm", "--user", ADMIN_PRINCIPAL, stdin=password)
    assert_connected(done, password)
    assert wire_summary(relay, SPNEGO_LABEL)["mechanism"] == "ntlm"


def test_spn_override_for_a_load_balanced_name(
    kerberos_lab: Lab, kdc: KDC, client_env, record
) -> None:
    """127.0.0.1 stands for a load-balanced name without an SPN: --spn-host names the
    server whose SPN (host/localhost) the KDC has."""
    relay = record(kerberos_lab)
    password = kdc.passwords[ADMIN_PRINCIPAL]
    done = connect_test(
        client_env, url(relay, "127.0.0.1"), "kerberos", "--user", ADMIN_PRINCIPAL,
        "--spn-host", "localhost", stdin=password,
    )  # fmt: skip
    assert_connected(done, password)
    assert wire_summary(relay, KERBEROS_LABEL)["mechanism"] == "kerberos"


def test_profile_carries_auth_and_spn_override(kerberos_lab: Lab, operator_ticket) -> None:
    added = remediate(
        operator_ticket, "connect", "add", "lb", "--server", url(kerberos_lab, "127.0.0.1"),
        "--auth", "kerberos", "--spn-host", "localhost",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    listed = remediate(operator_ticket, "connect", "list")
    assert "host/localhost" in listed.stdout and "kerberos" in listed.stdout
    assert_connected(remediate(operator_ticket, "connect", "test", "lb"))


# --- failures: one line, the cause, the README's exit status --------------------------------


def one_line_error(done: subprocess.CompletedProcess[str], status: int) -> str:
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("hint: "), done.stderr
    assert lines[0].startswith("remediate: error: ")
    return lines[0] + "\n" + lines[1]


def test_wrong_password(kerberos_lab: Lab, client_env) -> None:
    done = connect_test(
        client_env, url(kerberos_lab), "kerberos", "--user", ADMIN_PRINCIPAL, stdin="wrong-pw"
    )
    text = one_line_error(done, 5)
    assert f"refused the password for {ADMIN_PRINCIPAL}" in text and "wrong-pw" not in text


def test_unknown_user(kerberos_lab: Lab, client_env) -> None:
    done = connect_test(
        client_env, url(kerberos_lab), "kerberos", "--user", "nobody@LAB.TEST", stdin="pw"
    )
    assert "does not know the user nobody@LAB.TEST" in one_line_error(done, 5)


def test_no_credentials(kerberos_lab: Lab, client_env) -> None:
    """No ticket and no user: exit 4 (a credential is missing), saying how to get one."""
    text = one_line_error(connect_test(client_env, url(kerberos_lab), "kerberos"), 4)
    assert "no Kerberos ticket" in text and "kinit" in text


def test_user_without_password_or_ticket(kerberos_lab: Lab, client_env) -> None:
    done = connect_test(client_env, url(kerberos_lab), "kerberos", "--user", ADMIN_PRINCIPAL)
    text = one_line_error(done, 4)
    assert f"no Kerberos ticket for {ADMIN_PRINCIPAL}" in text
    assert f"kinit {ADMIN_PRINCIPAL}" in text


def test_spn_not_in_the_kdc(kerberos_lab: Lab, kdc: KDC, client_env) -> None:
    done = connect_test(
        client_env, url(kerberos_lab, "127.0.0.1"), "kerberos", "--user", ADMIN_PRINCIPAL,
        stdin=kdc.passwords[ADMIN_PRINCIPAL],
    )  # fmt: skip
    text = one_line_error(done, 5)
    assert "no service principal host/127.0.0.1" in text and "--spn-host" in text


def test_kdc_down(kerberos_lab: Lab, kdc: KDC, client_env) -> None:
    kdc.stop()
    try:
        done = connect_test(
            client_env, url(kerberos_lab), "kerberos", "--user", ADMIN_PRINCIPAL,
            stdin=kdc.passwords[ADMIN_PRINCIPAL],
        )  # fmt: skip
    finally:
        kdc.start()
    text = one_line_error(done, 5)
    assert f"no Kerberos KDC of realm {REALM} could be reached" in text and "port 88" in text


def test_ntlm_against_a_kerberos_only_endpoint(kerberos_lab: Lab, client_env) -> None:
    done = connect_test(client_env, url(kerberos_lab), "ntlm", "--user", ADMIN, stdin="pw")
    assert "does not offer ntlm authentication (it asks for: Kerberos)" in one_line_error(done, 5)


def test_basic_is_refused_by_a_kerberos_lab(kerberos_lab: Lab, client_env) -> None:
    done = connect_test(client_env, url(kerberos_lab), "basic", "--user", ADMIN, stdin="pw")
    assert done.returncode == 5
    assert done.stderr.startswith("remediate: WARNING: Basic authentication over plain http")
    # Basic goes out with the first request; the 401 cannot tell a wrong password from a
    # method the server lacks, so the hint names --auth too
    assert "(basic authentication, HTTP 401)" in done.stderr and "--auth" in done.stderr


# --- bulk: a Kerberos row with a ticket and no admin password -------------------------------


def test_bulk_row_with_a_ticket(kerberos_lab: Lab, operator_ticket, tmp_path: Path) -> None:
    rows = tmp_path / "rows.yaml"
    rows.write_text(
        f"- endpoint: {url(kerberos_lab)}\n  auth: kerberos\n  user: {OPERATOR}\n"
        "  connector: Outbound to Partner\n  port: 2525\n"
    )
    done = remediate(operator_ticket, "bulk", "plan", str(rows), "--password-stdin", stdin="\n")
    assert done.returncode == 10, done.stderr  # changes pending: the endpoint was read
    assert "Outbound to Partner" in done.stdout and "+Port: 2525" in done.stdout


def test_bulk_over_kerberos_in_forked_workers(
    kerberos_lab: Lab, negotiate_lab: Lab, operator_ticket
) -> None:
    """Two endpoints, each shell in a worker forked from `remediate` (bulk --processes): the
    workers log in with the operator's ticket from the inherited ticket cache, no password
    anywhere, as the command itself would."""
    rows = Path(operator_ticket["HOME"]) / "two.yaml"
    rows.write_text(
        f"- endpoint: {url(kerberos_lab)}\n  auth: kerberos\n  user: {OPERATOR}\n"
        "  connector: Outbound to Partner\n  port: 2526\n"
        f"- endpoint: {url(negotiate_lab)}\n  auth: negotiate\n  user: {OPERATOR}\n"
        "  connector: Outbound to Partner\n  port: 2527\n"
    )
    done = remediate(
        operator_ticket, "--verbose", "bulk", "plan", str(rows), "--password-stdin",
        "--processes", "2", stdin="\n",
    )  # fmt: skip
    assert done.returncode == 10, done.stderr  # both endpoints read: changes pending
    assert "+Port: 2526" in done.stdout and "+Port: 2527" in done.stdout
    assert "the shells run in 2 worker process(es) (fork)" in done.stderr


# --- the lab's side of the handshake --------------------------------------------------------


def test_the_lab_returns_the_mutual_auth_token(kerberos_lab: Lab, kdc: KDC) -> None:
    """The final 200 carries the acceptor's AP-REP: the client context completes with it."""
    import base64
    import http.client

    import spnego

    context = spnego.client(
        ADMIN_PRINCIPAL, kdc.passwords[ADMIN_PRINCIPAL], hostname="localhost", service="host",
        protocol="kerberos", options=spnego.NegotiateOptions.wrapping_winrm,
    )  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", kerberos_lab.port, timeout=10)
    headers = {"Authorization": "Kerberos " + base64.b64encode(context.step()).decode()}
    try:
        conn.request("POST", "/PowerShell", body=b"", headers=headers)
        reply = conn.getresponse()
        reply.read()
    finally:
        conn.close()
    assert reply.status == 200
    scheme, token = reply.getheader("WWW-Authenticate", "").split(" ", 1)
    assert scheme == "Kerberos"
    context.step(base64.b64decode(token))
    assert context.complete


def test_remediate_lab_with_a_keytab(kdc: KDC, client_env, tmp_path: Path) -> None:
    """``remediate lab --auth kerberos --keytab FILE`` as a process of its own."""
    import json
    import signal
    import time

    ready = tmp_path / "lab.json"
    lab = subprocess.Popen(
        [str(EXE), "lab", "--auth", "kerberos", "--keytab", str(kdc.keytab), "--ready-file",
         str(ready), "--state", str(tmp_path / "state.json")],
        env={k: v for k, v in client_env.items() if k != "KRB5_KTNAME"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and lab.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        assert info["auth"] == "kerberos"
        done = connect_test(
            client_env, f"http://localhost:{info['port']}/PowerShell", "kerberos",
            "--user", ADMIN_PRINCIPAL, stdin=kdc.passwords[ADMIN_PRINCIPAL],
        )  # fmt: skip
        assert_connected(done, kdc.passwords[ADMIN_PRINCIPAL])
    finally:
        lab.send_signal(signal.SIGINT)
        out, _ = lab.communicate(timeout=20)
    assert "(Kerberos, WinRM message encryption)" in out
