"""Canary: the lab's relay password (random per lab state) and admin password go through
every path — keyring, --password-stdin, apply, what-if, no change, show, undo, a refused (too long)
password, and connection failures in the middle of the credential step — and are found
nowhere: stdout, stderr, files written (profiles, backups, undo scripts, audit log, the lab's
own output), the keyring's home, exception text and chains, logs, and the command line and
environment of every process running meanwhile (sampled from /proc).

Excluded, and why: the lab's state file and ready file. The state file is the server side
(Exchange and Active Directory hold the relay account's password too); the ready file is
how the test itself learns the passwords.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import subprocess
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from remediate.core.errors import RemediateError
from remediate.core.options import FixOptions
from remediate.core.planner import build_plan
from remediate.core.playbooks import find
from remediate.core.preflight import MAX_CREDENTIAL_LENGTH
from remediate.lab.server import Lab
from remediate.remote.connections import parse_server
from remediate.remote.session import Session
from remediate.run.pipeline import apply_plan
from tests.e2e.conftest import EXE, PROFILE, RELAY, Cli
from tests.lab.lab_helpers import start_lab
from tests.proc_sampler import ProcSampler

pytestmark = [pytest.mark.e2e, pytest.mark.keyring]


@pytest.fixture
def lab_process(tmp_path: Path) -> Iterator[tuple[dict[str, object], Path]]:
    """``remediate lab`` in its own process; yields the ready file's content and its dir."""
    directory = tmp_path / "lab"
    directory.mkdir()
    ready = directory / "ready.json"
    with (directory / "stdout").open("w") as out, (directory / "stderr").open("w") as err:
        process = subprocess.Popen(
            [str(EXE), "lab", "--state", str(directory / "state.json"), "--ready-file", str(ready)],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
        )
    try:
        for _ in range(300):
            if ready.exists() and ready.stat().st_size:
                break
            assert process.poll() is None, (directory / "stderr").read_text()
            time.sleep(0.05)
        yield json.loads(ready.read_text()), directory
    finally:
        process.terminate()
        process.wait(timeout=20)


def files_holding(root: Path, secrets: list[str], exclude: set[Path]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and path not in exclude:
            data = path.read_bytes()
            found += [f"{path}: {s[:4]}…" for s in secrets if s.encode() in data]
    return found


def test_canary_is_found_nowhere(
    cli: Cli, lab_process: tuple[dict[str, object], Path], secret_service: dict[str, str]
) -> None:
    ready, lab_dir = lab_process
    relay = ready["relay"]
    assert isinstance(relay, dict)
    canary, relay_user = str(relay["password"]), str(relay["username"])
    admin_password, admin = str(ready["password"]), str(ready["username"])
    secrets = [canary, admin_password]
    endpoint = str(ready["endpoint"])
    fix = ["apply", "2016", "--connector", RELAY, "--mechanism", "BasicAuthRequireTLS"]
    fix += ["--username", relay_user]
    direct = ["--server", endpoint, "--auth", str(ready["auth"]), "--user", admin]
    direct += ["--password-stdin"]

    with ProcSampler(secrets) as sampler:
        cli.save_profile(endpoint, admin, admin_password)
        cli.save_relay(relay_user, canary)
        what_if = cli(*fix, "--profile", PROFILE, "--what-if")
        applied = cli(*fix, "--profile", PROFILE, "--yes")
        again = cli(*fix, "--profile", PROFILE, "--yes")
        shown = cli("show", "--profile", PROFILE, "--queues", "--json")
        [backup] = cli.backups()
        script = cli.state_dir / "undo.ps1"
        rendered = cli("undo", str(backup), "--output", str(script))
        undone = cli("undo", str(backup), "--yes")
        cli.forget_relay(relay_user)  # from here on the relay password comes on stdin line 2
        piped = cli(
            *fix, *direct, "--reenter-credential", "--yes",
            stdin=f"{admin_password}\n{canary}\n",
        )  # fmt: skip
        too_long = canary * (MAX_CREDENTIAL_LENGTH // len(canary) + 1)
        refused = cli(
            *fix, *direct, "--reenter-credential", "--yes", stdin=f"{admin_password}\n{too_long}\n"
        )
        wrong_admin = cli(*fix, *direct, "--yes", stdin=f"{canary}\n{canary}\n")

    for done in (what_if, applied, again, shown, rendered, undone):
        assert done.returncode == 0, done.stderr
    # the first apply drained the queues: nothing waits now, so the re-entered credential
    # cannot be shown to work by a delivery (README: Exit status, 7)
    assert piped.returncode == 7, piped.stdout[-2000:] + piped.stderr[-2000:]
    assert "Whether mail flows is not known: no message was waiting" in piped.stdout
    assert refused.returncode == 2 and "password is longer than" in refused.stderr
    assert wrong_admin.returncode == 5 and "401" in wrong_admin.stderr
    assert "AuthenticationCredential  not set         set" in applied.stdout
    assert "[4/9] Set-SendConnector: ok" in piped.stdout

    printed = [(i, done.stdout + done.stderr) for i, done in enumerate(cli.runs)]
    assert [i for i, text in printed if any(s in text for s in secrets)] == []
    exclude = {lab_dir / "state.json", lab_dir / "ready.json"}
    assert (lab_dir / "stdout").read_text(), "the lab wrote nothing: wrong process output?"
    tmp_root = Path(cli.env["XDG_STATE_HOME"]).parent
    written = files_holding(tmp_root, secrets, exclude)
    written += files_holding(Path(secret_service["HOME"]), secrets, set())
    assert written == []
    assert [p for p in tmp_root.rglob("*") if p.suffix in (".json", ".ps1", ".log")]
    assert sampler.hits == []
    assert any(str(EXE).encode() in seen and b"apply" in seen for seen in sampler.seen)


@pytest.fixture
def fault_lab(tmp_path: Path) -> Iterator[Lab]:
    lab = start_lab(tmp_path)
    try:
        yield lab
    finally:
        lab.stop()


def chain_text(exc: BaseException) -> str:
    """The exception, its hint, and every exception in its cause/context chain (even one
    suppressed with ``from None``), with tracebacks and reprs."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += traceback.format_exception(current, chain=False)
        parts += [repr(current), str(getattr(current, "hint", "") or "")]
        parts += [repr(arg) for arg in current.args]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def test_connection_failures_during_the_credential_step_leak_nothing(
    fault_lab: Lab, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The endpoint fails each request of the credential step in turn (in-process Lab,
    so the failure can be aimed at exactly that step); the errors, their chains and every log
    record (DEBUG, pypsrp included) hold no password."""
    caplog.set_level(logging.DEBUG)
    canary = fault_lab.relay_password
    connection = dataclasses.replace(
        parse_server(fault_lab.endpoint_url), auth="basic", username=fault_lab.admin_user
    )
    environ = {"XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path)}
    playbook = find("2016")
    options = FixOptions(connector=RELAY, username=fault_lab.relay_user, reenter_credential=True)
    failures: list[str] = []
    for offset in range(1, 5):
        with Session(connection, fault_lab.admin_password) as session:
            [before] = session.get_connectors(RELAY)
            plan = build_plan(playbook, options, current=before)
            credential_step = next(s for s in plan.steps if s.credential is not None)
            previous = plan.steps[plan.steps.index(credential_step) - 1]

            def aim(step: object, _result: object, previous: object = previous) -> None:
                if step is previous:
                    nth = fault_lab.faults.requests_seen + offset  # noqa: B023 - read at once
                    fault_lab.faults.faults = dataclasses.replace(
                        fault_lab.faults.faults, drop_on_request=nth
                    )

            try:
                apply_plan(
                    session, plan, before, connection, lambda ref: canary,
                    on_step=aim, environ=environ,
                )  # fmt: skip
            except RemediateError as exc:
                failures.append(chain_text(exc))
            finally:
                fault_lab.faults.faults = dataclasses.replace(
                    fault_lab.faults.faults, drop_on_request=None
                )
    assert len(failures) >= 2, "requests of the credential step did not fail: the fault missed"
    for text in failures:
        assert canary not in text and fault_lab.admin_password not in text
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    assert caplog.records, "nothing was logged at DEBUG: pypsrp logging was not captured"
    assert canary not in logged and fault_lab.admin_password not in logged
    assert files_holding(tmp_path, [canary], {tmp_path / "lab-state.json"}) == []
    audit_log = tmp_path / "state" / "remediate" / "audit.log"
    results = [json.loads(line)["result"] for line in audit_log.read_text().splitlines()]
    assert results.count("interrupted") == len(failures)  # the cut-short runs were audited


@pytest.mark.parametrize("auth", ["basic", "ntlm"])
def test_debug_runs_hold_no_canary(cli: Cli, tmp_path: Path, auth: str) -> None:
    """--debug logs remediate's, pypsrp's and spnego's records (every WinRM message sent and
    received): the relay and admin passwords, the Basic Authorization header (base64 of
    user:password) and the NTLM tokens are all redacted, in successful and failing runs."""
    lab = start_lab(tmp_path / "debuglab", auth=auth)
    try:
        canary, admin_password = lab.relay_password, lab.admin_password
        basic = base64.b64encode(f"{lab.admin_user}:{admin_password}".encode()).decode()
        secrets = [canary, admin_password, basic]
        fix = ["apply", "2016", "--connector", RELAY, "--mechanism", "BasicAuthRequireTLS"]
        fix += ["--username", lab.relay_user, "--server", lab.endpoint_url, "--auth", auth]
        fix += ["--user", lab.admin_user, "--password-stdin", "--yes"]
        applied = cli(*fix, "--debug", stdin=f"{admin_password}\n{canary}\n")
        verbose = cli(
            *fix, "--verbose", "--reenter-credential", stdin=f"{admin_password}\n{canary}\n"
        )
        wrong = cli("--debug", *fix, stdin=f"{canary}\n{canary}\n")
    finally:
        lab.stop()
    assert applied.returncode == 0, applied.stderr[-3000:]
    # applied drained the queues: the re-entered credential's verdict is "not known" (7)
    assert verbose.returncode == 7, verbose.stderr[-3000:]
    assert wrong.returncode == 5
    assert "DEBUG pypsrp" in applied.stderr  # pypsrp's own logging reached stderr
    assert "redacted" in applied.stderr
    for done in (applied, verbose, wrong):
        text = done.stdout + done.stderr
        assert [s[:4] for s in secrets if s in text] == []
