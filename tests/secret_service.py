"""A real Secret Service for tests: a private D-Bus session bus and gnome-keyring-daemon.

Fixtures (registered by tests/conftest.py):
  ``secret_service``  session-scoped; returns an environment dict (DBUS_SESSION_BUS_ADDRESS,
                      HOME, XDG_* dirs) for subprocesses such as the installed ``remediate``.
  ``keyring_env``     points this process's keyring at that service for one test (and
                      gives each test fresh XDG config/state dirs); returns the same dict.

Helper: ``run_remediate(env, *args, stdin="")`` runs the installed ``remediate`` executable
(the one next to this interpreter) in such an environment, secrets on stdin, never in argv::

    from tests.secret_service import run_remediate

    def test_show(secret_service, tmp_path):
        env = {**secret_service, "XDG_CONFIG_HOME": str(tmp_path / "config")}
        done = run_remediate(env, "show", "--profile", "lab")
        assert done.returncode == 0, done.stderr

Missing dbus-daemon or gnome-keyring-daemon FAILS the test (never skips): the test command
(scripts/test.sh) installs them with apt.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

UNLOCK_PASSWORD = "remediate-test-keyring"  # protects a throwaway keyring in a temp HOME
PR_SET_PDEATHSIG = 1
REMEDIATE_EXE = Path(sys.executable).with_name("remediate")


def run_remediate(
    env: dict[str, str], *args: str, stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The installed ``remediate`` command, run with ``env`` (e.g. from ``secret_service``)."""
    if not REMEDIATE_EXE.is_file():
        pytest.fail(f"{REMEDIATE_EXE} is missing: pip install -e '.[test]'", pytrace=False)
    return subprocess.run(
        [str(REMEDIATE_EXE), *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _die_with_parent() -> None:
    """Linux: the bus gets SIGTERM if pytest is killed before its cleanup runs (the keyring
    daemon then quits with its bus), so an interrupted run leaves no daemons behind."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(
            f"{tool} is not installed: the keyring tests need a real Secret Service "
            "(scripts/test.sh installs gnome-keyring and dbus)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def secret_service() -> Iterator[dict[str, str]]:
    dbus = _require("dbus-daemon")
    daemon = _require("gnome-keyring-daemon")
    home = Path(tempfile.mkdtemp(prefix="remediate-keyring-"))
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_RUNTIME_DIR": str(home / "run"),
        # the venv's remediate and python come first, as after activating it
        "PATH": os.pathsep.join([str(REMEDIATE_EXE.parent), os.environ.get("PATH", "")]),
    }
    (home / "run").mkdir(mode=0o700)
    env.pop("PYTHON_KEYRING_BACKEND", None)
    bus = subprocess.Popen(
        [dbus, "--session", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
        preexec_fn=_die_with_parent,
    )
    assert bus.stdout is not None
    address = bus.stdout.readline().strip()
    if not address:
        stop_bus(bus, kill=True)
        pytest.fail("dbus-daemon did not print its address", pytrace=False)
    env["DBUS_SESSION_BUS_ADDRESS"] = address
    started = subprocess.run(
        [daemon, "--unlock", "--components=secrets", "--daemonize"],
        input=UNLOCK_PASSWORD,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if started.returncode != 0:
        stop_bus(bus, kill=True)
        pytest.fail(f"gnome-keyring-daemon did not start: {started.stderr.strip()}")
    pids = [
        int(line.split("=", 1)[1])
        for line in started.stdout.splitlines()
        if line.startswith("GNOME_KEYRING_PID=")
    ]
    _wait_for_service(env)
    try:
        yield env
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        stop_bus(bus)
        shutil.rmtree(home, ignore_errors=True)


def stop_bus(bus: subprocess.Popen[str], *, kill: bool = False) -> None:
    """Stop a dbus-daemon started with stdout piped, and close that pipe."""
    if kill:
        bus.kill()
    else:
        bus.terminate()
    bus.wait(timeout=10)
    if bus.stdout is not None:
        bus.stdout.close()


def _wait_for_service(env: dict[str, str]) -> None:
    """The daemon answers on the bus a moment after it forks."""
    probe = (
        "import keyring; keyring.set_password('remediate:probe', 'probe', 'x'); "
        "keyring.delete_password('remediate:probe', 'probe')"
    )
    last = ""
    for _ in range(50):
        done = subprocess.run(
            [sys.executable, "-c", probe],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode == 0:
            return
        last = (done.stderr.strip().splitlines() or [""])[-1]
        time.sleep(0.1)
    pytest.fail(f"the Secret Service never answered: {last}", pytrace=False)


@pytest.fixture
def keyring_env(
    secret_service: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """This process's keyring talks to the test Secret Service; fresh config/state dirs."""
    import keyring
    from keyring.backends import SecretService

    env = {
        **secret_service,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    for name in ("DBUS_SESSION_BUS_ADDRESS", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(name, env[name])
    previous = keyring.get_keyring()
    keyring.set_keyring(SecretService.Keyring())
    try:
        yield env
    finally:
        keyring.set_keyring(previous)


WIPE = """
import secretstorage
connection = secretstorage.dbus_init()
for item in secretstorage.get_default_collection(connection).get_all_items():
    if item.get_attributes().get("service", "").startswith("remediate:"):
        item.delete()
"""


@pytest.fixture(autouse=True)
def _fresh_remediate_secrets(request: pytest.FixtureRequest) -> None:
    """The Secret Service lives for the whole session; each test that uses it starts with no
    remediate:* entries, so one test's stored relay password never answers for another's."""
    if "secret_service" not in request.fixturenames:
        return
    env = request.getfixturevalue("secret_service")
    subprocess.run([sys.executable, "-c", WIPE], env=env, check=True, timeout=30)
