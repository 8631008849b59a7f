"""`remediate bulk` with its shells in worker processes (``--processes``), end to end: the
installed command (one thread when it starts them, so they are forked) against labs over
real HTTP.

- the outcome (statuses, messages, exit status, the labs' connectors) is the one the same
  file gives with every shell in the command's own process (``--processes 0``);
- Ctrl-C and SIGTERM sent to the whole process group, as a terminal and a service manager
  do, reach the workers too: they ignore it, the command stops after the steps in flight,
  the report says what was changed, and no worker outlives the command;
- so does Ctrl-C while the workers read (nothing is sent);
- a worker killed mid-run fails only its own endpoint's connectors; the command killed
  (SIGKILL) leaves no worker behind: each sees its pipe close and closes its shells;
- how many workers are started (by default one per CPU, at most one per endpoint);
- the admin and relay passwords (stdin, or the relay one from a real keyring) reach the lab
  through the workers and appear nowhere else: not in any process's command line or
  environment (sampled from /proc while it runs), not in stdout/stderr (with --debug:
  pypsrp's records, logged in the workers), the report, the backups, the undo script or the
  audit log.

"No worker left" is checked by pid and by session: the command runs in a session of its
own, and afterwards no process of that session is running (a zombie has ended).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from remediate.core.plan import RELAY_SERVICE
from remediate.lab.seed import EXTRA_PREFIX
from remediate.lab.server import CmdletLatency, Lab
from remediate.remote.secrets import set_secret
from tests.bulk.bulk_helpers import (
    ADMIN_PASSWORD,
    RELAY_SECRET,
    cli_env,
    report_statuses,
    row,
    start_labs,
    write_rows,
)
from tests.lab.lab_helpers import start_lab
from tests.proc_sampler import ProcSampler
from tests.remote_helpers import closed_port
from tests.secret_service import REMEDIATE_EXE

pytestmark = pytest.mark.e2e

WORKERS = re.compile(
    r"^INFO remediate\.bulk\.runner: the shells run in (\d+) worker process\(es\)"
    r"(?: \((fork|spawn)\))?, pid ([\d, ]+)$",
    re.MULTILINE,
)
MISSING = f"{EXTRA_PREFIX} 099"  # no lab has it: that row fails


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str
    pid: int  # the command's; it led its own session (start_new_session)


def _names(count: int) -> list[str]:
    return [f"{EXTRA_PREFIX} {n:03d}" for n in range(1, count + 1)]


def run_bulk(env: dict[str, str], log: str, *args: str, stdin: str, timeout: float = 240) -> Done:
    """The installed ``remediate LOG bulk ARGS`` (LOG: --verbose or --debug) in a session of
    its own (so what it leaves behind can be found by session id), passwords on stdin."""
    with subprocess.Popen(
        [str(REMEDIATE_EXE), log, "bulk", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    ) as process:
        stdout, stderr = process.communicate(stdin, timeout=timeout)
        return Done(process.returncode, stdout, stderr, process.pid)


def read_until(stream: IO[str], done: Callable[[str], bool]) -> str:
    """The lines of ``stream`` up to and with the first one ``done`` accepts (or to EOF)."""
    seen = []
    for line in stream:
        seen.append(line)
        if done(line):
            break
    return "".join(seen)


def worker_pids(stderr: str) -> list[int]:
    """The pids the --verbose INFO line names (one such line per run)."""
    [(count, method, pids)] = WORKERS.findall(stderr)
    found = [int(p) for p in pids.split(", ")]
    assert len(found) == int(count)
    # forked: the command runs one thread when it starts them (remote.hosting)
    assert method in ("", "fork"), method
    return found


def _state(pid: int) -> str | None:
    """The process's state letter (``Z``: ended, its exit not yet collected), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[0]


def _session_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[3])


def left_behind(pids: list[int], session: int, within: float = 20.0) -> list[int]:
    """The pids still running (a zombie has ended), and every process still in the command's
    session, after up to ``within`` seconds (a loaded machine)."""
    deadline = time.monotonic() + within
    while True:
        alive = [p for p in pids if _state(p) not in (None, "Z")]
        alive += [
            int(e.name)
            for e in os.scandir("/proc")
            if e.name.isdigit()
            and int(e.name) not in alive
            and _session_of(int(e.name)) == session
            and _state(int(e.name)) not in (None, "Z")
        ]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def _outcomes(report: Path, urls: list[str]) -> dict[tuple[int, str], tuple[str, str, list[str]]]:
    """(lab number, connector) -> (status, message, changes), from a JSON report."""
    number = {url: n for n, url in enumerate(urls)}
    data = json.loads(report.read_text(encoding="utf-8"))
    return {
        (number[e["endpoint"]], c["connector"]): (c["status"], c["message"], c["changes"])
        for e in data["endpoints"]
        for c in e["connectors"]
    }


def _lab_view(lab: Lab) -> dict[str, dict[str, object]]:
    """Every connector of a lab, its fields as a dict (but the time it changed)."""
    view = {c.name: c.to_json() for c in lab.organization.connectors()}
    for fields in view.values():
        del fields["when_changed"]
    return view


def _changed(
    before: dict[str, dict[str, object]], after: dict[str, dict[str, object]]
) -> dict[str, dict[str, object]]:
    """Per connector the fields a run changed, with their new values: the same for two labs
    seeded alike (their GUIDs, ports and passwords are their own)."""
    assert set(after) == set(before)
    return {
        name: {key: value for key, value in fields.items() if before[name][key] != value}
        for name, fields in after.items()
        if fields != before[name]
    }


def _normalised(text: str, urls: list[str]) -> str:
    """Printed text with each lab's URL as its letter and every number (ports, times and the
    test's directories in file names) as N: what two runs on labs seeded alike share."""
    for letter, url in zip("ABC", urls, strict=False):
        text = text.replace(url, f"LAB-{letter}")
    return re.sub(r"\d+", "N", text)


def _spoil(lab: Lab, name: str) -> None:
    """IgnoreSTARTTLS set on the connector (by another admin), so RequireTLS is refused
    (Set-SendConnector docs: the two cannot both be $true; lab/rules.py)."""
    connector = lab.organization.connector(name)
    connector.ignore_starttls = True
    lab.organization.replace_connector(connector)


def test_same_outcome_with_and_without_worker_processes(tmp_path: Path) -> None:
    """One file run twice on identical pairs of labs: with two worker processes and with
    none. Three port changes per lab, one row naming a connector that does not exist, one
    asking for RequireTLS on a connector whose IgnoreSTARTTLS forbids it."""
    results: dict[int, tuple[Done, dict[tuple[int, str], tuple[str, str, list[str]]]]] = {}
    views: dict[int, list[dict[str, dict[str, object]]]] = {}
    printed: dict[int, str] = {}
    logged: dict[int, list[str]] = {}
    for processes in (2, 0):
        base = tmp_path / f"processes-{processes}"
        labs = start_labs(base / "labs", 2, extra_connectors=4)
        try:
            for lab in labs:
                _spoil(lab, f"{EXTRA_PREFIX} 004")
            rows = [row(lab, connector=n, port=2601) for lab in labs for n in _names(3)]
            rows.append(row(labs[0], connector=MISSING, port=2601))
            rows.append(row(labs[1], connector=f"{EXTRA_PREFIX} 004", require_tls=True))
            spec = write_rows(base / "ports.yaml", rows)
            report = base / "run.json"
            before = [_lab_view(lab) for lab in labs]
            done = run_bulk(
                cli_env(base), "--verbose",
                "apply", str(spec), "--yes", "--password-stdin",
                "--processes", str(processes), "--report", str(report),
                stdin=f"{ADMIN_PASSWORD}\n{RELAY_SECRET}\n",
            )  # fmt: skip
            assert report.is_file(), done.stdout + done.stderr
            urls = [lab.endpoint_url for lab in labs]
            results[processes] = (done, _outcomes(report, urls))
            printed[processes] = _normalised(done.stdout, urls)
            logged[processes] = sorted(
                _normalised(line, urls)
                for line in done.stderr.splitlines()
                if not WORKERS.search(line)
            )
            views[processes] = [
                _changed(b, _lab_view(lab)) for b, lab in zip(before, labs, strict=True)
            ]
        finally:
            for lab in labs:
                lab.stop()

    (hosted, hosted_outcomes), (local, local_outcomes) = results[2], results[0]
    assert hosted.returncode == 6, hosted.stdout + hosted.stderr  # one row failed (README)
    assert local.returncode == hosted.returncode, local.stdout + local.stderr
    assert hosted_outcomes == local_outcomes
    statuses = {key: status for key, (status, _, _) in hosted_outcomes.items()}
    assert statuses == {
        **{(n, name): "changed" for n in (0, 1) for name in _names(3)},
        (0, MISSING): "failed",
        (1, f"{EXTRA_PREFIX} 004"): "failed",
    }
    assert "not found" in hosted_outcomes[(0, MISSING)][1]
    assert "IgnoreSTARTTLS" in hosted_outcomes[(1, f"{EXTRA_PREFIX} 004")][1]
    assert views[2] == views[0]
    assert [sorted(view) for view in views[2]] == [_names(3), _names(3)]
    assert all(view[name]["port"] == 2601 for view in views[2] for name in _names(3))
    # the diffs and the recap, line for line (a forked worker flushing a copy of the
    # command's output buffer would print a line twice)
    assert printed[2] == printed[0]
    assert f"--- LAB-B: {EXTRA_PREFIX} N (before)" in printed[2]
    # stderr: the same progress lines, log records and warnings (Basic over http: once per
    # endpoint, from the worker's shell), in whatever order the threads gave them
    assert logged[2] == logged[0]
    warned = [line for line in logged[2] if "Basic authentication over plain http" in line]
    assert len(warned) == 2
    assert "total: ok=0, changed=6, failed=2, skipped=0" in hosted.stdout.splitlines()

    pids = worker_pids(hosted.stderr)
    assert len(set(pids)) == 2 and hosted.pid not in pids
    assert left_behind(pids, hosted.pid) == []
    assert WORKERS.search(local.stderr) is None  # --processes 0: no worker at all
    assert left_behind([], local.pid) == []


@pytest.mark.parametrize(
    ("signum", "status", "said"),
    [
        (signal.SIGINT, 130, "Ctrl-C"),
        (signal.SIGTERM, 143, "SIGTERM"),
        (signal.SIGHUP, 129, "SIGHUP"),
    ],
    ids=["ctrl-c", "sigterm", "sighup"],
)
def test_a_signal_to_the_process_group_stops_after_the_steps_in_flight(
    tmp_path: Path, signum: signal.Signals, status: int, said: str
) -> None:
    """Sent to the group, the signal reaches the workers as well as the command (README,
    exit status: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP: a terminal closed): the
    workers ignore it and finish the steps in flight, the command sends nothing more, and
    every worker ends with it.
    Each change takes 0.3 s on the lab, two in flight per endpoint: the run lasts seconds,
    so the signal lands mid-run even on a loaded machine."""
    labs = start_labs(
        tmp_path / "labs",
        2,
        extra_connectors=15,
        cmdlet_latency=CmdletLatency(0.0, {"Set-SendConnector": 0.3}),
    )
    try:
        names = _names(15)
        rows = [row(lab, connector=n, port=2525) for lab in labs for n in names]
        spec = write_rows(tmp_path / "many.yaml", rows)
        report = tmp_path / "run.json"
        command = [str(REMEDIATE_EXE), "--verbose", "bulk", "apply", str(spec), "--yes"]
        command += ["--password-stdin", "--processes", "2", "--in-flight", "2"]
        command += ["--report", str(report)]
        with subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(tmp_path),
            start_new_session=True,  # its own process group, as a terminal's foreground job
        ) as process:
            assert process.stdin is not None and process.stderr is not None
            process.stdin.write(ADMIN_PASSWORD + "\n")
            process.stdin.close()
            # INFO lines, then one progress line per connector
            seen = read_until(process.stderr, lambda line: line.startswith("[4/30]"))
            os.killpg(process.pid, signum)
            rest = process.stderr.read()
            stdout = process.stdout.read() if process.stdout else ""
            assert process.wait(timeout=120) == status, seen + rest + stdout
        assert f"interrupted ({said}): stopped after the steps in flight" in rest
        pids = worker_pids(seen)
        assert len(pids) == 2
        assert left_behind(pids, process.pid) == []

        statuses = report_statuses(report)
        assert json.loads(report.read_text(encoding="utf-8"))["interrupted"] is True
        changed = 0
        for lab in labs:
            ordered = [statuses[(lab.endpoint_url, n)] for n in names]
            done = ordered.count("changed")
            changed += done
            assert ordered == ["changed"] * done + ["skipped"] * (15 - done), ordered
            ports = [lab.organization.connector(n).port for n in names]
            assert ports[:done] == [2525] * done
            assert 2525 not in ports[done:]
        assert 4 <= changed < 30
        assert f"not run: interrupted ({said})" in stdout
    finally:
        for lab in labs:
            lab.stop()


def _written(*directories: Path) -> dict[Path, bytes]:
    return {
        path: path.read_bytes()
        for directory in directories
        if directory.exists()
        for path in directory.rglob("*")
        if path.is_file()
    }


def test_secret_canary_with_worker_processes(tmp_path: Path) -> None:
    """Rotate the relay password on two connectors of each of two labs, shells in two
    forked workers, --debug: the admin password (stdin line 1) and the relay password
    (line 2, no keyring) cross to the workers over their pipes only."""
    admin_password = f"Canary-Admin-{secrets.token_hex(8)}"
    relay_canary = f"Canary-Relay-{secrets.token_hex(8)}"
    labs = [
        start_lab(
            tmp_path / "labs" / f"lab{n}",
            admin_password=admin_password,
            state_file=tmp_path / "labs" / f"lab{n}-state.json",  # the server side: not scanned
            extra_connectors=2,
        )
        for n in (1, 2)
    ]
    try:
        names = _names(2)
        rows = [
            row(
                lab,
                connector=name,
                credential_user=lab.relay_user,
                credential_key="rotation-2026",
                reenter_credential=True,
            )
            for lab in labs
            for name in names
        ]
        spec = write_rows(tmp_path / "rotate.yaml", rows)
        env = cli_env(tmp_path)  # no keyring: both passwords come from stdin
        out = tmp_path / "out"
        out.mkdir()
        stdin = f"{admin_password}\n{relay_canary}\n"
        common = ["--password-stdin", "--processes", "2"]
        control = f"Canary-Control-{secrets.token_hex(8)}"  # shows the sampler sees environs
        with ProcSampler([admin_password, relay_canary, control]) as sampler:
            witness = subprocess.Popen(["sleep", "30"], env={**env, "CONTROL": control})
            planned = run_bulk(env, "--debug", "plan", str(spec), "--output", str(out / "p.ps1"),
                               *common, stdin=stdin)  # fmt: skip
            applied = run_bulk(env, "--debug", "apply", str(spec), "--yes",
                               "--report", str(out / "run.json"), *common, stdin=stdin)  # fmt: skip
            undone = run_bulk(env, "--debug", "undo", str(out / "run.json"), "--yes", *common,
                              stdin=stdin)  # fmt: skip
            witness.kill()
            witness.wait()
        runs = (planned, applied, undone)
        assert planned.returncode == 10, planned.stdout + planned.stderr
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert undone.returncode == 0, undone.stdout + undone.stderr
        assert set(report_statuses(out / "run.json").values()) == {"changed"}
        for lab in labs:  # the secret did reach Exchange, through the workers
            for name in names:
                assert lab.organization.connector(name).credential.password == relay_canary

        for done in runs:
            pids = worker_pids(done.stderr)
            assert len(pids) == 2
            # pypsrp runs only in the workers: its records came from there, redacted there
            assert "DEBUG pypsrp" in done.stderr
            # forked (the command runs one thread then): a worker's command line is the
            # command's own; and the sampler did see every worker
            parent = sampler.commands.get(done.pid)
            assert parent is not None and b"bulk" in parent
            assert [sampler.commands.get(p) for p in pids] == [parent, parent]
            assert left_behind(pids, done.pid) == []
        assert {pid for pid, _, _ in sampler.hits} == {witness.pid}  # the control only
        assert all(control.encode() in data for _, _, data in sampler.hits)
        printed = [done.stdout + done.stderr for done in runs]
        assert "redacted" in printed[1]
        assert [i for i, text in enumerate(printed) for s in (admin_password, relay_canary)
                if s in text] == []  # fmt: skip
        written = _written(out, Path(env["XDG_STATE_HOME"]), Path(env["XDG_CONFIG_HOME"]),
                           Path(env["HOME"]))  # fmt: skip
        backups = Path(env["XDG_STATE_HOME"]) / "remediate" / "backups"
        assert list(backups.glob("*-bulk-undo.ps1"))  # apply's undo script
        assert len(list(backups.glob("*.json"))) >= 4  # a backup per connector changed
        assert (Path(env["XDG_STATE_HOME"]) / "remediate" / "audit.log").is_file()
        assert {out / "run.json", out / "p.ps1"} <= set(written)
        leaks = [
            (str(p), s[:8])
            for p, data in written.items()
            for s in (admin_password, relay_canary)
            if s.encode() in data
        ]
        assert leaks == []
    finally:
        for lab in labs:
            lab.stop()


def _start_slow_run(tmp_path: Path, labs: list[Lab], names: list[str]) -> subprocess.Popen[str]:
    rows = [row(lab, connector=n, port=2525) for lab in labs for n in names]
    spec = write_rows(tmp_path / "many.yaml", rows)
    command = [str(REMEDIATE_EXE), "--verbose", "bulk", "apply", str(spec), "--yes"]
    command += ["--password-stdin", "--processes", "2", "--in-flight", "2"]
    command += ["--report", str(tmp_path / "run.json")]
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(tmp_path),
        start_new_session=True,
    )
    assert process.stdin is not None
    process.stdin.write(ADMIN_PASSWORD + "\n")
    process.stdin.close()
    return process


def _slow_labs(tmp_path: Path, count: int) -> list[Lab]:
    return start_labs(
        tmp_path / "labs",
        2,
        extra_connectors=count,
        cmdlet_latency=CmdletLatency(0.0, {"Set-SendConnector": 0.3}),
    )


def test_a_worker_killed_mid_run_fails_only_its_endpoint(tmp_path: Path) -> None:
    """One worker dies (SIGKILL) while its endpoint's changes are in flight: that endpoint's
    connectors in flight say they may or may not have been applied and the rest are not
    run (the connection was lost); the other endpoint, in the other worker, is done; the
    command ends with 6 (README: something failed or was skipped), not a traceback."""
    labs = _slow_labs(tmp_path, 15)
    names = _names(15)
    try:
        with _start_slow_run(tmp_path, labs, names) as process:
            assert process.stderr is not None and process.stdout is not None
            seen = read_until(process.stderr, lambda line: line.startswith("[4/30]"))
            pids = worker_pids(seen)
            os.kill(pids[0], signal.SIGKILL)  # the first endpoint's shell (endpoints in turn)
            rest = process.stderr.read()
            stdout = process.stdout.read()
            assert process.wait(timeout=120) == 6, seen + rest + stdout
        assert "Traceback" not in rest + stdout
        assert left_behind(pids, process.pid) == []
        data = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
        by_lab = {e["endpoint"]: e["connectors"] for e in data["endpoints"]}
        hit, spared = (by_lab[lab.endpoint_url] for lab in labs)
        assert [c["status"] for c in spared] == ["changed"] * 15
        assert all(labs[1].organization.connector(n).port == 2525 for n in names)
        statuses = [c["status"] for c in hit]
        done = statuses.count("changed")
        assert "skipped" in statuses, statuses  # killed mid-run, not after its last change
        for outcome in hit:
            port = labs[0].organization.connector(outcome["connector"]).port
            if outcome["status"] == "changed":
                assert port == 2525
            elif outcome["status"] == "skipped":
                assert port != 2525
                assert outcome["message"].startswith("not run:"), outcome
            else:  # in flight when the worker died
                assert outcome["status"] == "failed", outcome
                assert "may or may not have been applied" in outcome["message"]
                assert "worker process" in outcome["message"]
        assert statuses[:done] == ["changed"] * done
    finally:
        for lab in labs:
            lab.stop()


def test_workers_end_when_the_command_is_killed(tmp_path: Path) -> None:
    """SIGKILL to the command alone (no handler runs, nothing closes the pipes): each worker
    sees its pipe close, closes its shells and ends; none is left running."""
    labs = _slow_labs(tmp_path, 15)
    try:
        with _start_slow_run(tmp_path, labs, _names(15)) as process:
            assert process.stderr is not None
            seen = read_until(process.stderr, lambda line: line.startswith("[4/30]"))
            pids = worker_pids(seen)
            process.kill()
            assert process.wait(timeout=60) == -signal.SIGKILL
        assert left_behind(pids, process.pid, within=60) == []
        for lab in labs:  # each worker closed its shell on the way out (a request each)
            assert lab._endpoint is not None
            deadline = time.monotonic() + 30
            while lab._endpoint.shell_count and time.monotonic() < deadline:
                time.sleep(0.1)
            assert lab._endpoint.shell_count == 0
    finally:
        for lab in labs:
            lab.stop()


def test_how_many_workers_by_default(tmp_path: Path) -> None:
    """README (bulk --processes): by default one worker per CPU, at most --parallel and one
    per endpoint, and none when that is one; a number asked for is also capped at one per
    endpoint."""
    labs = start_labs(tmp_path / "labs", 2)
    try:
        one = write_rows(
            tmp_path / "one.yaml", [row(labs[0], connector="Outbound to Relay", port=2700)]
        )
        both = write_rows(
            tmp_path / "both.yaml",
            [row(lab, connector="Outbound to Relay", port=2700) for lab in labs],
        )
        env = cli_env(tmp_path)
        stdin = f"{ADMIN_PASSWORD}\n\n"
        cpus = os.cpu_count() or 1
        default_both = min(cpus, 2) if cpus > 1 else 0
        for spec, extra, expected in (
            (one, [], 0),
            (both, [], default_both),
            (both, ["--processes", "3"], 2),
            (both, ["--processes", "1"], 1),
            (both, ["--processes", "0"], 0),
            (both, ["--parallel", "1"], 0),  # one endpoint at a time: one shell at a time
        ):
            done = run_bulk(env, "--verbose", "plan", str(spec), "--password-stdin", *extra,
                            stdin=stdin)  # fmt: skip
            assert done.returncode == 10, done.stdout + done.stderr  # changes pending
            pids = worker_pids(done.stderr) if expected else []
            assert len(pids) == expected, (extra, done.stderr)
            if not expected:
                assert WORKERS.search(done.stderr) is None, (extra, done.stderr)
            assert left_behind(pids, done.pid) == []
    finally:
        for lab in labs:
            lab.stop()


def test_ctrl_c_while_the_workers_read_changes_nothing(tmp_path: Path) -> None:
    """Ctrl-C to the group while each endpoint's one Get-SendConnector (3 s on the lab) is
    in flight in its worker: the reads finish, nothing is sent, every row is reported not
    run, exit 130, and the workers end."""
    labs = start_labs(
        tmp_path / "labs",
        2,
        extra_connectors=3,
        cmdlet_latency=CmdletLatency(0.0, {"Get-SendConnector": 3.0}),
    )
    names = _names(3)
    try:
        with _start_slow_run(tmp_path, labs, names) as process:
            assert process.stderr is not None and process.stdout is not None
            # the INFO line is logged before the reads start
            seen = read_until(process.stderr, lambda line: WORKERS.search(line) is not None)
            pids = worker_pids(seen)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # both reads sent: the lab has seen them
                if all(lab.faults.requests_seen >= 4 for lab in labs):
                    break
                time.sleep(0.05)
            time.sleep(0.5)
            os.killpg(process.pid, signal.SIGINT)
            rest = process.stderr.read()
            stdout = process.stdout.read()
            status = process.wait(timeout=120)
        assert status == 130, seen + rest + stdout
        assert "Traceback" not in rest + stdout
        assert "interrupted (Ctrl-C)" in rest
        assert f"+++ {labs[1].endpoint_url}: {names[2]} (after)" in stdout  # the reads ended
        assert left_behind(pids, process.pid) == []
        for lab in labs:
            assert all(lab.organization.connector(n).port != 2525 for n in names)
        statuses = report_statuses(tmp_path / "run.json")
        assert set(statuses.values()) == {"skipped"}, statuses
    finally:
        for lab in labs:
            lab.stop()


@pytest.mark.keyring
def test_keyring_relay_password_with_worker_processes(
    keyring_env: dict[str, str], tmp_path: Path
) -> None:
    """The relay password read from a real Secret Service (D-Bus) in the command, the shells
    in two workers: the workers are still forked (the keyring lookup leaves no thread
    behind), the password reaches the lab and no process's command line or environment."""
    relay_canary = f"Canary-Keyring-{secrets.token_hex(8)}"
    set_secret(RELAY_SERVICE, "rotation-2026", relay_canary, keyring_env)
    labs = start_labs(tmp_path / "labs", 2, extra_connectors=1)
    try:
        name = f"{EXTRA_PREFIX} 001"
        rows = [
            row(lab, connector=name, credential_user=lab.relay_user,
                credential_key="rotation-2026", reenter_credential=True)
            for lab in labs
        ]  # fmt: skip
        spec = write_rows(tmp_path / "rotate.yaml", rows)
        env = {**cli_env(tmp_path), **keyring_env}
        del env["PYTHON_KEYRING_BACKEND"]  # the real (test) Secret Service
        report = tmp_path / "run.json"
        with ProcSampler([relay_canary]) as sampler:
            done = run_bulk(env, "--verbose", "apply", str(spec), "--yes", "--password-stdin",
                            "--processes", "2", "--report", str(report),
                            stdin=ADMIN_PASSWORD + "\n")  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert set(report_statuses(report).values()) == {"changed"}
        assert all(lab.organization.connector(name).credential.password == relay_canary
                   for lab in labs)  # fmt: skip
        pids = worker_pids(done.stderr)
        parent = sampler.commands.get(done.pid)
        assert parent is not None and [sampler.commands.get(p) for p in pids] == [parent] * 2
        assert sampler.hits == []
        assert relay_canary not in done.stdout + done.stderr
        assert left_behind(pids, done.pid) == []
    finally:
        for lab in labs:
            lab.stop()


def test_endpoint_errors_cross_from_the_workers_unchanged(tmp_path: Path) -> None:
    """Three endpoints in three workers: one refuses the admin password (LoginRefused in
    the worker), one does not answer (ConnectionFailed), one works. Each error reaches the
    report and the recap as it does with the shells in the command's own process: same
    statuses, messages and exit status; the working endpoint is changed either way."""
    runs: dict[int, tuple[int, dict[tuple[int, str], tuple[str, str, list[str]]], str]] = {}
    for processes in (3, 0):
        base = tmp_path / f"processes-{processes}"
        (good,) = start_labs(base / "good", 1, extra_connectors=1)
        refusing = start_lab(
            base / "refusing",
            admin_password="Another-Admin-Pw-3",  # not stdin line 1: the login is refused
            state_file=base / "refusing-state.json",
        )
        gone = f"http://127.0.0.1:{closed_port()}/PowerShell"  # nobody answers there
        urls = [good.endpoint_url, refusing.endpoint_url, gone]
        try:
            rows = [row(good, connector=f"{EXTRA_PREFIX} 001", port=2601)]
            rows.append(row(refusing, connector="Outbound to Relay", port=2601))
            rows.append(row(refusing, connector="Outbound to Relay", port=2601).replace(
                refusing.endpoint_url, gone))  # fmt: skip
            spec = write_rows(base / "mixed.yaml", rows)
            report = base / "run.json"
            done = run_bulk(
                cli_env(base), "--verbose", "apply", str(spec), "--yes", "--password-stdin",
                "--processes", str(processes), "--report", str(report),
                stdin=f"{ADMIN_PASSWORD}\n\n",
            )  # fmt: skip
            assert report.is_file(), done.stdout + done.stderr
            outcomes = {
                key: (status, _normalised(message, urls), changes)
                for key, (status, message, changes) in _outcomes(report, urls).items()
            }
            runs[processes] = (done.returncode, outcomes, _normalised(done.stdout, urls))
            assert good.organization.connector(f"{EXTRA_PREFIX} 001").port == 2601
            assert len(worker_pids(done.stderr) if processes else []) == processes
            assert "Traceback" not in done.stdout + done.stderr
        finally:
            good.stop()
            refusing.stop()
    assert runs[3] == runs[0]
    status, outcomes, _ = runs[3]
    assert status == 6  # README: something was skipped
    assert outcomes[(0, f"{EXTRA_PREFIX} 001")][0] == "changed"
    assert outcomes[(1, "Outbound to Relay")][0] == "skipped"
    assert outcomes[(2, "Outbound to Relay")][0] == "skipped"
    assert outcomes[(1, "Outbound to Relay")][1] != outcomes[(2, "Outbound to Relay")][1]


def test_a_negative_number_of_workers_is_refused(tmp_path: Path) -> None:
    """One error line and exit 2 (usage), before the file is read or anything is sent."""
    done = run_bulk(
        cli_env(tmp_path), "--verbose", "apply", str(tmp_path / "absent.yaml"), "--yes",
        "--processes", "-1", stdin="",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[0] == "remediate: error: --processes must be 0 or more"
    assert WORKERS.search(done.stderr) is None
