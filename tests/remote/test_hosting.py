"""Shells in worker processes (``remote.hosting``) against a lab over real HTTP: a hosted
Session gives what a local one gives, errors cross with their type and hint, credentials
travel with their step, a dead worker fails its steps, Ctrl-C does not reach it, it ends
with its parent, and its log records come back redacted.

These workers are spawned (the pytest process runs the lab's threads: a caller with threads
gets spawned workers); the forked worker of a single-threaded process is tested in a child
process here and through the installed command in tests/bulk/test_bulk_processes.py.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from remediate.core.errors import ConnectionFailed, LoginRefused, UsageError
from remediate.core.plan import CredentialRef, Parameter, Step, StepKind
from remediate.lab.server import CmdletLatency, Lab
from remediate.remote.hosting import ShellHost, start_hosts
from remediate.remote.session import Session
from tests.lab.lab_helpers import start_lab
from tests.remote_helpers import (  # noqa: F401 - fixtures
    closed_port,
    lab_connection,
    lab_fixture,
)

pytestmark = pytest.mark.e2e

PARTNER = "Outbound to Partner"
RELAY = "Outbound to Relay"


def _step(*params: tuple[str, object]) -> Step:
    return Step(
        "Set-SendConnector",
        tuple(Parameter(n, v) for n, v in params),  # type: ignore[arg-type]
        StepKind.CHANGE,
        reason="test",
        template="set_send_connector",
    )


@pytest.fixture(name="host")
def host_fixture() -> Iterator[ShellHost]:
    (host,) = start_hosts(1, method="spawn")
    try:
        yield host
    finally:
        host.close()


def _gone(pid: int, within: float = 15.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_spawned_when_this_process_runs_threads(lab: Lab) -> None:
    (host,) = start_hosts(1)
    try:
        assert host.start_method == "spawn"  # the lab's threads are running
        assert host.pid != os.getpid()
    finally:
        host.close()
    assert _gone(host.pid)


def test_a_hosted_session_gives_what_a_local_one_gives(host: ShellHost, lab: Lab) -> None:
    said_local: list[str] = []
    said_hosted: list[str] = []
    connection = lab_connection(lab)
    with Session(connection, lab.admin_password, said_local.append) as local:
        expected = local.get_connectors()
    with Session(connection, lab.admin_password, said_hosted.append, host=host) as hosted:
        assert hosted.is_open
        got = hosted.get_connectors()
        changed = hosted.run(_step(("Identity", PARTNER), ("Port", 2526)))
    assert not hosted.is_open
    assert got == expected
    assert changed.ok and changed.changed and changed.errors == []
    assert lab.organization.connector(PARTNER).port == 2526
    # Basic over plain http: the shell's warning comes back from the worker, said once
    assert said_hosted == said_local and len(said_hosted) == 1
    assert lab._endpoint is not None and lab._endpoint.shell_count == 0  # closed there


def test_several_pipelines_in_flight_in_one_hosted_shell(host: ShellHost, tmp_path: Path) -> None:
    lab = start_lab(tmp_path, cmdlet_latency=CmdletLatency(0.0, {"Set-SendConnector": 0.3}))
    try:
        connection = lab_connection(lab)
        with Session(connection, lab.admin_password, lambda _: None, runspaces=4, host=host) as s:
            started = time.monotonic()
            sent = [s.begin(_step(("Identity", PARTNER), ("Port", 2530 + n))) for n in range(4)]
            results = [s.finish(p) for p in sent]
            took = time.monotonic() - started
        assert all(r.ok for r in results)
        assert took < 4 * 0.3  # at once, not one after another
    finally:
        lab.stop()


def test_errors_cross_with_their_type_message_and_hint(host: ShellHost, lab: Lab) -> None:
    def failure(session: Session) -> BaseException:
        with pytest.raises(ConnectionFailed) as caught:
            session.open()
        return caught.value

    refused = lab_connection(lab)
    unreachable = lab_connection(lab, port=closed_port(), connect_timeout=2.0)
    for connection, password, kind in (
        (refused, "not the password", LoginRefused),
        (unreachable, lab.admin_password, ConnectionFailed),
    ):
        local = failure(Session(connection, password, lambda _: None))
        hosted = failure(Session(connection, password, lambda _: None, host=host))
        assert type(hosted) is type(local) and isinstance(hosted, kind)
        assert (hosted.message, hosted.hint) == (local.message, local.hint)
        assert "not the password" not in f"{hosted.message} {hosted.hint}"


def test_a_credential_travels_with_its_step(host: ShellHost, lab: Lab) -> None:
    secret = "Hosted-Relay-Secret-9"
    ref = CredentialRef(lab.relay_user, "remediate-relay", "relay")
    step = _step(("Identity", RELAY), ("AuthenticationCredential", ref))
    with Session(lab_connection(lab), lab.admin_password, lambda _: None, host=host) as session:
        with pytest.raises(UsageError, match=r"a password for .* is needed"):
            session.run(step)  # no source for it: refused here, nothing sent
        assert lab.organization.connector(RELAY).credential is None
        result = session.run(step, lambda wanted: secret if wanted == ref else "wrong")
    assert result.ok
    credential = lab.organization.connector(RELAY).credential
    assert credential is not None and credential.password == secret


def test_the_command_quota_is_learnt_across_the_pipe(host: ShellHost, tmp_path: Path) -> None:
    lab = start_lab(tmp_path, max_commands_per_shell=3)
    try:
        with Session(lab_connection(lab), lab.admin_password, lambda _: None, host=host) as s:
            results = [s.run(_step(("Identity", PARTNER), ("Port", 2540 + n))) for n in range(7)]
        assert all(r.ok for r in results)
        assert lab._endpoint is not None and lab._endpoint.shells_created >= 3
    finally:
        lab.stop()


def test_a_worker_that_dies_fails_its_steps(host: ShellHost, tmp_path: Path) -> None:
    lab = start_lab(tmp_path, cmdlet_latency=CmdletLatency(0.0, {"Set-SendConnector": 1.0}))
    try:
        session = Session(lab_connection(lab), lab.admin_password, lambda _: None, host=host)
        session.open()
        pending = session.begin(_step(("Identity", PARTNER), ("Port", 2550)))
        os.kill(host.pid, signal.SIGKILL)
        with pytest.raises(ConnectionFailed) as caught:
            session.finish(pending)
        assert caught.value.message == (
            "remediate's worker process for this shell ended (killed by SIGKILL)"
        )
        assert not session.is_open
        started = time.monotonic()
        with pytest.raises(ConnectionFailed):
            session.run(_step(("Identity", PARTNER), ("Port", 2551)))
        assert time.monotonic() - started < 1.0  # refused at once, not after a timeout
        session.close()
    finally:
        lab.stop()


def test_ctrl_c_does_not_reach_the_worker(host: ShellHost, lab: Lab) -> None:
    os.kill(host.pid, signal.SIGINT)  # as a terminal sends it to the whole process group
    os.kill(host.pid, signal.SIGTERM)
    time.sleep(0.3)
    with Session(lab_connection(lab), lab.admin_password, lambda _: None, host=host) as session:
        assert session.run(_step(("Identity", PARTNER), ("Port", 2560))).ok


def test_log_records_come_back_redacted(lab: Lab) -> None:
    caught: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            caught.append(record)

    logger = logging.getLogger("pypsrp")
    handler, level, propagate = Keep(), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        (host,) = start_hosts(1)  # the worker logs at the levels set when it starts
        try:
            with Session(lab_connection(lab), lab.admin_password, lambda _: None, host=host) as s:
                s.get_connectors()
        finally:
            host.close()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
    texts = [record.getMessage() for record in caught]
    assert any(r.name.startswith("pypsrp.") and r.levelno == logging.DEBUG for r in caught)
    assert any("<" in t and "redacted>" in t for t in texts)  # tokens, headers, payloads
    basic = base64.b64encode(f"{lab.admin_user}:{lab.admin_password}".encode()).decode()
    assert not [t for t in texts if lab.admin_password in t or basic in t]


def test_forked_when_alone_and_gone_with_its_parent(tmp_path: Path) -> None:
    """A single-threaded process forks its workers; when it dies without closing them (kill
    -9 leaves no time), each worker sees its pipe close and ends."""
    script = textwrap.dedent(
        """
        import os, sys
        from remediate.remote.hosting import start_hosts
        hosts = start_hosts(2)
        print(" ".join(h.start_method for h in hosts), *(h.pid for h in hosts), flush=True)
        sys.stdin.readline()
        os.kill(os.getpid(), 9)
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    ) as process:
        assert process.stdout is not None and process.stdin is not None
        first, second, *pids = process.stdout.readline().split()
        assert (first, second) == ("fork", "fork")
        workers = [int(pid) for pid in pids]
        assert all(not _gone(pid, within=0.2) for pid in workers)  # running
        process.stdin.write("\n")
        process.stdin.flush()
        assert process.wait(timeout=30) == -9
    assert all(_gone(pid) for pid in workers)


def test_preload_imports_what_a_shell_needs(lab: Lab) -> None:
    """What a forked worker would otherwise import itself on its first open and step: after
    ``preload()`` a session imports no pypsrp, requests or urllib3 module (checked in a fresh
    interpreter; this one has them all already)."""
    script = textwrap.dedent(
        """
        import json, sys
        from remediate.remote.connections import AuthMethod, Connection
        from remediate.remote.session import Session
        from remediate.remote.shell import preload
        where = json.loads(sys.stdin.readline())
        preload()
        before = set(sys.modules)
        connection = Connection(server=where["host"], port=where["port"], scheme="http",
                                auth=AuthMethod.BASIC, username=where["user"])
        with Session(connection, where["password"], lambda _: None) as session:
            session.get_connectors()
        print(json.dumps(sorted(set(sys.modules) - before)))
        """
    )
    where = {
        "host": lab.host,
        "port": lab.port,
        "user": lab.admin_user,
        "password": lab.admin_password,
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(where) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    imported = json.loads(done.stdout)
    assert [m for m in imported if m.split(".")[0] in ("pypsrp", "requests", "urllib3")] == []
