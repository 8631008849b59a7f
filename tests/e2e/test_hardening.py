"""Issue 13, hostile conditions against the INSTALLED command and a lab over real HTTP:
passwords piped with separators, SIGTERM/SIGHUP mid-apply, a closed stdout, planted
symbolic links, two runs on one connector, an existing --report. No keyring: passwords are
piped with --password-stdin (the keyring backend is the one that always fails)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from remediate.lab.seed import EXTRA_PREFIX
from remediate.lab.server import Lab
from tests.bulk.bulk_helpers import ADMIN_PASSWORD, cli_env, row, start_labs, write_rows
from tests.secret_service import REMEDIATE_EXE, run_remediate

pytestmark = pytest.mark.e2e

RELAY = "Outbound to Relay"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    (started,) = start_labs(tmp_path, 1, extra_connectors=30)
    yield started
    started.stop()


def apply_2016(lab: Lab, *extra: str) -> list[str]:
    return [
        "apply", "2016", "--server", lab.endpoint_url, "--auth", "basic",
        "--user", lab.admin_user, "--password-stdin", "--connector", RELAY,
        "--mechanism", "BasicAuthRequireTLS", "--username", lab.relay_user, "--yes",
        "--queue-wait", "0", *extra,
    ]  # fmt: skip


def secrets(lab: Lab) -> str:
    return f"{ADMIN_PASSWORD}\n{lab.relay_password}\n"


def audit(env: dict[str, str]) -> list[dict[str, object]]:
    log = Path(env["XDG_STATE_HOME"]) / "remediate" / "audit.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


# --- 2. --password-stdin ---------------------------------------------------------------------


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085", "\f", "\x1b", "\t"])
def test_a_piped_password_with_a_separator_is_refused_before_anything_is_sent(
    lab: Lab, tmp_path: Path, separator: str
) -> None:
    """str.splitlines() split these into two "lines": half the admin password went to
    Exchange and the other half became the relay password."""
    env = cli_env(tmp_path)
    stdin = f"Lab-Admin{separator}Pw-7\n{lab.relay_password}\n"
    done = run_remediate(env, *apply_2016(lab), stdin=stdin)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"stdin line 1 holds the control or separator character U+{ord(separator):04X}" in (
        done.stderr
    )
    assert "Lab-Admin" not in done.stderr + done.stdout
    assert lab.faults.requests_seen == 0  # not even the admin password was sent
    assert lab.organization.connector(RELAY).credential is None


def test_a_bad_relay_line_is_refused_before_the_admin_password_is_used(
    lab: Lab, tmp_path: Path
) -> None:
    done = run_remediate(
        cli_env(tmp_path), *apply_2016(lab), stdin=f"{ADMIN_PASSWORD}\nrelay\u2028tail\n"
    )
    assert done.returncode == 2 and "stdin line 2 holds" in done.stderr
    assert lab.faults.requests_seen == 0


def test_crlf_lines_are_passwords_without_the_cr(lab: Lab, tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    done = run_remediate(
        env, *apply_2016(lab), stdin=f"{ADMIN_PASSWORD}\r\n{lab.relay_password}\r\n"
    )
    assert done.returncode == 0, done.stderr
    assert lab.organization.connector(RELAY).credential.password == lab.relay_password


def test_bulk_refuses_a_separator_in_the_shared_relay_password(lab: Lab, tmp_path: Path) -> None:
    names = [f"{EXTRA_PREFIX} {n:03d}" for n in (1, 2)]
    rows = [row(lab, connector=n, credential_user="relay@contoso.lab") for n in names]
    spec = write_rows(tmp_path / "rotate.yaml", rows)
    before = [lab.organization.connector(n).credential for n in names]
    done = run_remediate(
        cli_env(tmp_path),
        "bulk", "apply", str(spec), "--password-stdin", "--yes",
        stdin=f"{ADMIN_PASSWORD}\nRelay-Pw\u0085tail\n",
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "stdin line 2 holds the control or separator character U+0085" in done.stderr
    assert lab.faults.requests_seen == 0
    assert [lab.organization.connector(n).credential for n in names] == before


def test_connect_relay_refuses_a_separator(tmp_path: Path) -> None:
    done = run_remediate(
        cli_env(tmp_path), "connect", "relay", "relay@contoso.lab", "--password-stdin",
        stdin="first\u2028second\n",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "U+2028" in done.stderr and "first" not in done.stderr


# --- 3. SIGTERM / SIGHUP ---------------------------------------------------------------------


def _signal_at_step_2(lab: Lab, env: dict[str, str], signum: int) -> tuple[int, str, str]:
    lab.faults.faults = dataclasses.replace(lab.faults.faults, latency=0.3)
    with subprocess.Popen(
        [str(REMEDIATE_EXE), *apply_2016(lab)],
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(secrets(lab))
        process.stdin.close()
        seen = []
        for line in process.stdout:
            seen.append(line)
            if line.startswith("[3/9]"):
                process.send_signal(signum)
                break
        rest = process.stdout.read()
        stderr = process.stderr.read() if process.stderr else ""
        code = process.wait(timeout=60)
    lab.faults.faults = dataclasses.replace(lab.faults.faults, latency=0.0)
    return code, "".join(seen) + rest, stderr


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_stop_signal_mid_apply_writes_the_recap_and_the_audit(
    lab: Lab, tmp_path: Path, signum: int, status: int
) -> None:
    env = cli_env(tmp_path)
    code, _, stderr = _signal_at_step_2(lab, env, signum)
    name = signal.Signals(signum).name
    assert code == status, stderr
    assert f"remediate: error: Stopped by {name}: " in stderr, stderr
    assert "  1. Get-SendConnector: ran (read)" in stderr
    assert "Backup: " in stderr
    results = [line["result"] for line in audit(env)]
    assert results[:2] in (
        ["not run", "not run"],
        ["interrupted", "not run"],
        ["changed", "not run"],
        ["changed", "interrupted"],
    )
    assert set(results[2:]) <= {"not run"}  # the second server's Retry-Queue
    if results[0] == "changed":
        assert lab.organization.connector(RELAY).credential is not None


def test_sigterm_mid_bulk_writes_the_report(lab: Lab, tmp_path: Path) -> None:
    lab.faults.faults = dataclasses.replace(lab.faults.faults, latency=0.02)
    names = [f"{EXTRA_PREFIX} {n:03d}" for n in range(1, 31)]
    spec = write_rows(tmp_path / "many.yaml", [row(lab, connector=n, port=2525) for n in names])
    report = tmp_path / "run.json"
    with subprocess.Popen(
        [str(REMEDIATE_EXE), "bulk", "apply", str(spec), "--password-stdin", "--yes",
         "--report", str(report)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=cli_env(tmp_path),
    ) as process:  # fmt: skip
        assert process.stdin is not None and process.stderr is not None
        process.stdin.write(ADMIN_PASSWORD + "\n")
        process.stdin.close()
        for line in process.stderr:
            if line.startswith("[3/30]"):
                process.send_signal(signal.SIGTERM)
                break
        rest = process.stderr.read()
        stdout = process.stdout.read() if process.stdout else ""
        assert process.wait(timeout=60) == 143, stdout + rest
    assert "interrupted (SIGTERM): stopped after the steps in flight" in rest
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["interrupted"] is True
    statuses = [c["status"] for e in data["endpoints"] for c in e["connectors"]]
    done = statuses.count("changed")
    assert 3 <= done < 30 and statuses == ["changed"] * done + ["skipped"] * (30 - done)
    assert [lab.organization.connector(n).port for n in names[:done]] == [2525] * done
    assert "not run: interrupted (SIGTERM)" in stdout
    assert len([line for line in audit(cli_env(tmp_path)) if line["result"] == "changed"]) == done


# --- 4. a closed stdout ----------------------------------------------------------------------


def _closed_stdout(env: dict[str, str], *args: str, stdin: str = "") -> tuple[int, str]:
    """Run with stdout a pipe whose reader has already gone (as after `| head -0`)."""
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [str(REMEDIATE_EXE), *args], input=stdin, stdout=write, stderr=subprocess.PIPE,
            text=True, env=env, timeout=90, check=False,
        )  # fmt: skip
    finally:
        os.close(write)
    return done.returncode, done.stderr


def test_apply_into_a_closed_pipe_still_records_and_recaps(lab: Lab, tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    code, stderr = _closed_stdout(env, *apply_2016(lab), stdin=secrets(lab))
    assert code == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
    assert "All 9 step(s) ran" in stderr  # the recap, on stderr once stdout has gone
    assert [line["result"] for line in audit(env)] == ["changed"] * 3
    assert lab.organization.connector(RELAY).credential is not None


@pytest.mark.parametrize(
    "args",
    [
        ("playbooks",),
        ("diagnose", "--json", "tests/fixtures/events/export.xml"),
        ("diagnose", "tests/fixtures/events/pasted-en.txt"),
    ],
)
def test_read_only_commands_into_a_closed_pipe_exit_quietly(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    code, stderr = _closed_stdout(cli_env(tmp_path), *args)
    assert code == 0 and stderr == ""


def test_show_into_a_closed_pipe_exits_quietly(lab: Lab, tmp_path: Path) -> None:
    code, stderr = _closed_stdout(
        cli_env(tmp_path), "show", "--server", lab.endpoint_url, "--auth", "basic",
        "--user", lab.admin_user, "--password-stdin", stdin=ADMIN_PASSWORD + "\n",
    )  # fmt: skip
    assert code == 0 and "Traceback" not in stderr
    # only the loud warning for a Basic password over plain http
    assert all("Basic authentication over plain http" in line for line in stderr.splitlines())


# --- 10. planted symbolic links and loose modes ----------------------------------------------


@pytest.mark.parametrize("planted", ["audit.log", "backups"])
def test_a_planted_symlink_is_refused_and_nothing_changes(
    lab: Lab, tmp_path: Path, planted: str
) -> None:
    env = cli_env(tmp_path)
    state = Path(env["XDG_STATE_HOME"]) / "remediate"
    state.mkdir(parents=True)
    target = tmp_path / "elsewhere"
    if planted == "backups":
        target.mkdir()
    else:
        target.write_text("", encoding="utf-8")
    (state / planted).symlink_to(target)
    done = run_remediate(env, *apply_2016(lab), stdin=secrets(lab))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{state / planted} is a symbolic link" in done.stderr
    assert lab.organization.connector(RELAY).credential is None
    assert (target.read_text() == "") if planted == "audit.log" else not any(target.iterdir())


def test_loose_modes_are_repaired(lab: Lab, tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    state = Path(env["XDG_STATE_HOME"]) / "remediate"
    (state / "backups").mkdir(parents=True, mode=0o755)
    state.chmod(0o755)
    (state / "backups").chmod(0o777)
    (state / "audit.log").write_text("", encoding="utf-8")
    (state / "audit.log").chmod(0o644)
    done = run_remediate(env, *apply_2016(lab), stdin=secrets(lab))
    assert done.returncode == 0, done.stderr
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (state, state / "backups")}
    assert modes == {"remediate": 0o700, "backups": 0o700}
    assert stat.S_IMODE((state / "audit.log").stat().st_mode) == 0o600


# --- 12. two runs on one connector; one --report path ---------------------------------------


def test_a_second_apply_on_the_same_connector_is_refused_while_the_first_runs(
    lab: Lab, tmp_path: Path
) -> None:
    """Before: both succeeded and the second audited the first's "old" values."""
    env = cli_env(tmp_path)
    lab.faults.faults = dataclasses.replace(lab.faults.faults, latency=0.4)
    with subprocess.Popen(
        [str(REMEDIATE_EXE), *apply_2016(lab)],
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as first:  # fmt: skip
        assert first.stdin is not None and first.stdout is not None
        first.stdin.write(secrets(lab))
        first.stdin.close()
        for line in first.stdout:
            if line.startswith("[1/9]"):
                break
        second = run_remediate(
            {**env, "REMEDIATE_LOCK_WAIT": "0.5"}, *apply_2016(lab), stdin=secrets(lab)
        )
        first.stdout.read()
        stderr = first.stderr.read() if first.stderr else ""
        first.wait(timeout=120)
    lab.faults.faults = dataclasses.replace(lab.faults.faults, latency=0.0)
    assert first.returncode == 0, stderr
    assert second.returncode == 2, second.stdout + second.stderr
    assert "another remediate run (pid " in second.stderr
    assert f"is changing '{RELAY}' at {lab.endpoint_url}" in second.stderr
    assert [line["result"] for line in audit(env)] == ["changed"] * 3
    # after the first has finished, a run goes through (the lock died with its holder)
    again = run_remediate(env, *apply_2016(lab, "--reenter-credential"), stdin=secrets(lab))
    assert again.returncode == 0, again.stderr
    later = audit(env)[3:]
    olds = [
        line["changes"]["AuthenticationCredential"]["old"]  # type: ignore[index]
        for line in later
        if "AuthenticationCredential" in line["changes"]  # type: ignore[operator]
    ]
    assert olds == [{"credential": "set"}]  # read after the first's change


def test_bulk_refuses_an_existing_report_unless_forced(lab: Lab, tmp_path: Path) -> None:
    name = f"{EXTRA_PREFIX} 001"
    spec = write_rows(tmp_path / "one.yaml", [row(lab, connector=name, port=2527)])
    report = tmp_path / "run.json"
    report.write_text('{"kept": true}\n', encoding="utf-8")
    env = cli_env(tmp_path)
    args = ("bulk", "apply", str(spec), "--password-stdin", "--yes", "--report", str(report))
    refused = run_remediate(env, *args, stdin=ADMIN_PASSWORD + "\n")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "the file exists (the report of another run?)" in refused.stderr
    assert report.read_text() == '{"kept": true}\n'
    assert lab.organization.connector(name).port != 2527 and lab.faults.requests_seen == 0
    forced = run_remediate(env, *args, "--force", stdin=ADMIN_PASSWORD + "\n")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert json.loads(report.read_text())["format"] == 1


# --- 13. crafted backup and report files ------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"format": 1, "created": "x", "endpoint": "e", "url": "u", "connector": [], '
        '"plan": {"steps": []}}',
        '{"format": 1, "created": "x", "endpoint": "e", "url": "u", '
        '"connector": {"Name": "x"}, "plan": {"playbook": "2016", "event_id": 2016, '
        '"connector": "x", "steps": ["not a step"]}}',
        '{"format": 1, "created": "x", "endpoint": "e", "url": "u", '
        '"connector": {"Name": "x"}, "plan": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}",
    ],
    ids=["deep-list", "connector-a-list", "step-a-string", "deep-object"],
)
def test_a_crafted_backup_gives_one_clear_error(tmp_path: Path, text: str) -> None:
    crafted = tmp_path / "backup.json"
    crafted.write_text(text, encoding="utf-8")
    done = run_remediate(cli_env(tmp_path), "undo", str(crafted), "--output", "undo.ps1")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"remediate: error: {crafted}: not a remediate backup (")
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize(
    "text",
    [
        '{"format": 1, "endpoints": ["x"]}',
        '{"format": 1, "endpoints": [{"connection": [], "connectors": []}]}',
        '{"format": 1, "endpoints": [{"connectors": [{"backup": ["x"]}]}]}',
        '{"format": 1, "endpoints": {"a": 1}}',
        '{"format": 1, "endpoints": ' + "[" * 50_000 + "]" * 50_000 + "}",
    ],
)
def test_a_crafted_report_gives_one_clear_error(tmp_path: Path, text: str) -> None:
    crafted = tmp_path / "run.json"
    crafted.write_text(text, encoding="utf-8")
    done = run_remediate(cli_env(tmp_path), "bulk", "undo", str(crafted), "--yes")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"remediate: error: {crafted}: not a bulk report")
    assert "Traceback" not in done.stderr


def test_a_lock_held_by_a_live_process_is_waited_for_then_refused(
    lab: Lab, tmp_path: Path
) -> None:
    """The holder is this test process (its flock on the connector's lock file)."""
    import fcntl

    from remediate.remote.connections import parse_server
    from remediate.run.locks import lock_path

    env = cli_env(tmp_path)
    path = lock_path(parse_server(lab.endpoint_url), RELAY, env)
    path.parent.mkdir(parents=True)
    with open(path, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("pid 1 since test\n")
        held.flush()
        done = run_remediate(
            {**env, "REMEDIATE_LOCK_WAIT": "0.3"}, *apply_2016(lab), stdin=secrets(lab)
        )
    assert done.returncode == 2 and "another remediate run (pid 1 since test)" in done.stderr
    assert lab.faults.requests_seen == 0
