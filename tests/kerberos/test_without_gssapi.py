"""Without the Kerberos libraries: one line saying what to install, NTLM still works.

The Python gssapi package is installed here (the kerberos extra), so its absence is
simulated: a directory first on PYTHONPATH holds a ``gssapi`` package whose import fails,
exactly what Python does when the package is missing. Nothing else is replaced.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from remediate.lab.server import Lab
from tests.lab.lab_helpers import start_lab

EXE = Path(sys.executable).with_name("remediate")
pytestmark = pytest.mark.e2e


@pytest.fixture
def no_gssapi_env(tmp_path: Path) -> dict[str, str]:
    shadow = tmp_path / "shadow" / "gssapi"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named gssapi')\n")
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(shadow.parent),
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    return env


@pytest.fixture
def ntlm_lab(tmp_path: Path) -> Lab:
    lab = start_lab(tmp_path / "lab", auth="ntlm")
    yield lab
    lab.stop()


def run(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EXE), *args], input=stdin, env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


@pytest.mark.parametrize("auth", ["kerberos", "negotiate"])
def test_kerberos_without_gssapi_says_what_to_install(
    no_gssapi_env: dict[str, str], ntlm_lab: Lab, auth: str
) -> None:
    done = run(
        no_gssapi_env, "connect", "test", "--server", ntlm_lab.endpoint_url, "--auth", auth,
        "--user", ntlm_lab.admin_user, "--password-stdin", stdin=ntlm_lab.admin_password,
    )  # fmt: skip
    assert done.returncode == 5, done.stderr
    first, hint = done.stderr.strip().splitlines()
    assert first == (
        f"remediate: error: --auth {auth} needs the Kerberos libraries (Python gssapi and "
        "krb5), which are not installed"
    )
    assert "pip install 'remediate[kerberos]'" in hint and "libkrb5-dev" in hint
    assert "--auth ntlm works without it" in hint


def test_ntlm_works_without_gssapi(no_gssapi_env: dict[str, str], ntlm_lab: Lab) -> None:
    done = run(
        no_gssapi_env, "connect", "test", "--server", ntlm_lab.endpoint_url, "--auth", "ntlm",
        "--user", ntlm_lab.admin_user, "--password-stdin", stdin=ntlm_lab.admin_password,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "returned 7 connector(s)" in done.stdout


def test_the_lab_refuses_kerberos_without_gssapi(
    no_gssapi_env: dict[str, str], tmp_path: Path
) -> None:
    done = run(
        no_gssapi_env, "lab", "--auth", "kerberos", "--ready-file", str(tmp_path / "r.json"),
        "--state", str(tmp_path / "s.json"),
    )  # fmt: skip
    assert done.returncode == 2
    assert "needs the Kerberos libraries" in done.stderr and "Traceback" not in done.stderr


def test_the_lab_refuses_kerberos_without_a_keytab(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KRB5")}
    env["KRB5_KTNAME"] = f"FILE:{tmp_path / 'none.keytab'}"
    env["KRB5_CONFIG"] = str(tmp_path / "krb5.conf")  # an empty configuration
    (tmp_path / "krb5.conf").write_text("")
    done = run(
        env, "lab", "--auth", "kerberos", "--ready-file", str(tmp_path / "r.json"),
        "--state", str(tmp_path / "s.json"),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "no usable service keys" in done.stderr and "--keytab" in done.stderr
