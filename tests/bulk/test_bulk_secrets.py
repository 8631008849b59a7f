"""The secret canary for bulk runs, and Ctrl-C in the middle of one.

Canary: the admin password (stdin line 1) and a relay password kept in a real keyring (under
the row's credential_key) reach the lab, and appear nowhere else: not in stdout, stderr, the
report, the dry-run script, backups, undo scripts, the audit log or the config directory.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from remediate.core.plan import RELAY_SERVICE
from remediate.lab.faults import Faults
from remediate.lab.seed import EXTRA_PREFIX
from remediate.lab.server import CmdletLatency
from remediate.remote.secrets import set_secret
from tests.bulk.bulk_helpers import (
    ADMIN_PASSWORD,
    bulk,
    cli_env,
    report_statuses,
    row,
    start_labs,
    write_rows,
)
from tests.secret_service import REMEDIATE_EXE

pytestmark = pytest.mark.e2e

RELAY_CANARY = "Canary-Relay-Pw-9f2c81d7"


def files_text(*directories: Path) -> dict[Path, str]:
    return {
        path: path.read_text(encoding="utf-8", errors="replace")
        for directory in directories
        if directory.exists()
        for path in directory.rglob("*")
        if path.is_file()
    }


@pytest.mark.keyring
def test_secret_canary_bulk(keyring_env: dict[str, str], tmp_path: Path) -> None:
    labs = start_labs(tmp_path / "labs", 2, extra_connectors=2)
    try:
        set_secret(RELAY_SERVICE, "rotation-2026", RELAY_CANARY, keyring_env)
        names = [f"{EXTRA_PREFIX} 001", f"{EXTRA_PREFIX} 002"]
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
        env = {**cli_env(tmp_path), **keyring_env}
        del env["PYTHON_KEYRING_BACKEND"]  # the real (test) Secret Service this time
        outputs = []
        for args in (
            ["plan", str(spec), "--output", str(tmp_path / "out" / "rotate.ps1")],
            ["apply", str(spec), "--yes", "--report", str(tmp_path / "out" / "run.json")],
            ["undo", str(tmp_path / "out" / "run.json"), "--yes"],
        ):
            (tmp_path / "out").mkdir(exist_ok=True)
            # line 1 only: the relay password must come from the keyring
            result = bulk(env, *args, "--password-stdin", stdin=ADMIN_PASSWORD + "\n")
            assert result.returncode in (0, 10), result.stdout + result.stderr
            outputs += [result.stdout, result.stderr]
        assert set(report_statuses(tmp_path / "out" / "run.json").values()) == {"changed"}
        for lab in labs:  # the secret did reach Exchange
            for name in names:
                assert lab.organization.connector(name).credential.password == RELAY_CANARY
        written = files_text(
            tmp_path / "out", Path(env["XDG_STATE_HOME"]), Path(env["XDG_CONFIG_HOME"])
        )
        report = json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))
        assert any(c["backup"] for e in report["endpoints"] for c in e["connectors"])
        assert any(p.name == "audit.log" for p in written)
        for secret in (RELAY_CANARY, ADMIN_PASSWORD):
            assert all(secret not in text for text in outputs)
            assert [p for p, text in written.items() if secret in text] == []
    finally:
        for lab in labs:
            lab.stop()


def test_ctrl_c_stops_after_the_step_in_flight(tmp_path: Path) -> None:
    # each change 0.2 s on the lab and 2 in flight: the run lasts seconds, so the signal lands
    # mid-run even on a loaded machine (8 in flight at request latency alone ended too soon)
    (lab,) = start_labs(
        tmp_path,
        1,
        extra_connectors=30,
        faults=Faults(latency=0.02),
        cmdlet_latency=CmdletLatency(0.0, {"Set-SendConnector": 0.2}),
    )
    try:
        names = [f"{EXTRA_PREFIX} {n:03d}" for n in range(1, 31)]
        spec = write_rows(tmp_path / "many.yaml", [row(lab, connector=n, port=2525) for n in names])
        report = tmp_path / "run.json"
        with subprocess.Popen(
            [
                str(REMEDIATE_EXE),
                "bulk",
                "apply",
                str(spec),
                "--password-stdin",
                "--yes",
                "--in-flight",
                "2",
                "--report",
                str(report),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(tmp_path),
        ) as process:
            assert process.stdin is not None and process.stderr is not None
            process.stdin.write(ADMIN_PASSWORD + "\n")
            process.stdin.close()
            seen = []
            for line in process.stderr:  # progress lines: one per connector done
                seen.append(line)
                if line.startswith("[3/30]"):
                    process.send_signal(signal.SIGINT)
                    break
            rest = process.stderr.read()
            stdout = process.stdout.read() if process.stdout else ""
            assert process.wait(timeout=60) == 130, stdout + rest
            assert "interrupted (Ctrl-C): stopped after the steps in flight" in rest
            statuses = report_statuses(report)
            ordered = [statuses[(lab.endpoint_url, n)] for n in names]
            done = ordered.count("changed")
            assert 3 <= done < 30
            assert ordered == ["changed"] * done + ["skipped"] * (30 - done)
            assert json.loads(report.read_text(encoding="utf-8"))["interrupted"] is True
            ports = [lab.organization.connector(n).port for n in names]
            assert ports[:done] == [2525] * done
            assert 2525 not in ports[done:]
            assert "not run: interrupted (Ctrl-C)" in stdout
    finally:
        lab.stop()
