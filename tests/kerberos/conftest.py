"""A real MIT KDC for the whole session, labs that log in with it, and a wire recorder.

The KDC (tests/kdc.py) runs on a free loopback port with its own realm LAB.TEST. The labs run
in this process, so this process gets the realm's KRB5_CONFIG, KRB5_KDC_PROFILE and
KRB5_KTNAME for the session (restored at the end); every ``remediate`` run gets them too,
plus its own KRB5CCNAME. Without the KDC tools or the Python Kerberos libraries the tests are
skipped, except under CI=true, where that fails the run.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from remediate.lab.server import Lab
from tests.kdc import ADMIN_PRINCIPAL, KDC, OTHER, REALM, create_kdc, missing_tools
from tests.kerberos.wire import Recorder
from tests.lab.lab_helpers import start_lab

EXE = Path(sys.executable).with_name("remediate")
OPERATOR = f"{OTHER}@{REALM}"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and the Kerberos tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def kdc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KDC]:
    missing = missing_tools()
    if missing:
        _unavailable(
            f"no MIT KDC tools ({', '.join(missing)}): apt-get install krb5-kdc "
            "krb5-admin-server krb5-user"
        )
    try:
        import gssapi  # noqa: F401
        import krb5  # noqa: F401
    except ImportError:
        _unavailable("no Python gssapi/krb5: pip install -e '.[kerberos]'")
    passwords = {ADMIN_PRINCIPAL: secrets.token_urlsafe(12), OPERATOR: secrets.token_urlsafe(12)}
    server = create_kdc(tmp_path_factory.mktemp("kdc"), passwords)
    saved = {name: os.environ.get(name) for name in server.env}
    os.environ.update(server.env)
    try:
        yield server
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _lab(kdc: KDC, tmp_path: Path, mode: str) -> Lab:
    return start_lab(
        tmp_path,
        auth=mode,
        admin_user=ADMIN_PRINCIPAL,
        admin_password=kdc.passwords[ADMIN_PRINCIPAL],  # for NTLM, which has no KDC
    )


@pytest.fixture(scope="module")
def kerberos_lab(kdc: KDC, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Offers ``Kerberos`` only, as Exchange's /PowerShell does by default."""
    lab = _lab(kdc, tmp_path_factory.mktemp("kerberos-lab"), "kerberos")
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture(scope="module")
def negotiate_lab(kdc: KDC, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Offers ``Negotiate``: Kerberos or NTLM inside SPNEGO."""
    lab = _lab(kdc, tmp_path_factory.mktemp("negotiate-lab"), "negotiate")
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def record() -> Iterator[Callable[[Lab], Recorder]]:
    """``record(lab)``: a relay in front of ``lab`` that keeps every byte both ways."""
    started: list[Recorder] = []

    def make(lab: Lab) -> Recorder:
        relay = Recorder(lab.port)
        relay.start()
        started.append(relay)
        return relay

    yield make
    for relay in started:
        relay.stop()


@pytest.fixture
def client_env(kdc: KDC, tmp_path: Path) -> dict[str, str]:
    """The environment of one ``remediate`` run: the realm, an empty ticket cache of its own,
    no keyring (keyring's fail backend), private config and state directories."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KRB5")}
    env.update(kdc.client_env(tmp_path / "ccache"))
    env.update(
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    return env
