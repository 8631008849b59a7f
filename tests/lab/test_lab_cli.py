"""`remediate lab` through the real executable: ready file, announcement, Ctrl-C, bad input."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from remediate.lab.server import Address, write_private_json

pytestmark = pytest.mark.e2e

EXE = str(Path(sys.executable).with_name("remediate"))


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "XDG_STATE_HOME": str(tmp_path / "xdg-state"), "PYTHONUNBUFFERED": "1"}


def _wait_for(path: Path, process: subprocess.Popen[str], limit: float = 30.0) -> None:
    """Wait for the ready file (a generous limit, not a timing assertion)."""
    deadline = time.monotonic() + limit
    while not path.exists():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"remediate lab exited {process.returncode}: {out} {err}")
        if time.monotonic() > deadline:
            pytest.fail("remediate lab never wrote its ready file")
        time.sleep(0.02)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    ready = tmp_path / "lab.json"
    process = subprocess.Popen(
        [EXE, "lab", "--ready-file", str(ready), "--state", str(tmp_path / "state.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
    )
    try:
        _wait_for(ready, process)
        yield process, ready
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _connect(info: dict) -> RunspacePool:
    wsman = WSMan(
        info["host"],
        port=info["port"],
        path=info["path"],
        ssl=info["ssl"],
        auth=info["auth"],
        username=info["username"],
        password=info["password"],
        encryption="never" if info["auth"] == "basic" else "auto",
        cert_validation=info["ca_file"] or False,
    )
    return RunspacePool(wsman, configuration_name=info["configuration_name"])


def test_ready_file_serves_a_client_and_ctrl_c_stops_cleanly(running) -> None:
    process, ready = running
    assert stat.S_IMODE(ready.stat().st_mode) == 0o600
    info = json.loads(ready.read_text())
    assert info["endpoint"] == f"http://127.0.0.1:{info['port']}/PowerShell"
    assert info["username"] == "administrator@contoso.lab"
    assert info["auth"] == "ntlm"  # the default: NTLM with message encryption, no extra package
    assert info["relay"]["username"] and info["relay"]["password"]
    assert info["smtp"]["host"] == "127.0.0.1" and info["smtp"]["port"] > 0
    with _connect(info) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-SendConnector")
        names = {str(c) for c in ps.invoke()}
    assert "Outbound to Relay" in names

    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=15)
    assert process.returncode == 0
    assert info["endpoint"] in out
    assert "administrator@contoso.lab" in out
    assert str(ready) in out
    assert "stopped" in out
    for secret in (info["password"], info["relay"]["password"]):
        assert secret not in out and secret not in err
    assert not ready.exists()


def test_sigterm_also_stops_cleanly(running) -> None:
    process, _ = running
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=15)
    assert process.returncode == 0


def test_tls_lab_writes_its_ca_and_clients_trust_it(tmp_path: Path) -> None:
    ready = tmp_path / "lab.json"
    process = subprocess.Popen(
        [EXE, "lab", "--tls", "--ready-file", str(ready), "--state", str(tmp_path / "s.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
    )
    try:
        _wait_for(ready, process)
        info = json.loads(ready.read_text())
        assert info["endpoint"].startswith("https://127.0.0.1:")
        assert Path(info["ca_file"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
        with _connect(info) as pool:
            assert pool.is_alive()
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=15)
    assert process.returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "192.0.2.10:5985"], "not a loopback address"),
        (["--smtp-listen", "0.0.0.0:2525"], "not a loopback address"),
        (["--listen", "localhost"], "--listen must be HOST:PORT"),
        (["--listen", "127.0.0.1:99999"], "--listen must be HOST:PORT"),
        (["--fault-drop-on", "0"], "drop on request must be a request number from 1"),
        (["--fault-latency", "-1"], "fault latency must be zero or more seconds"),
        (["--server-route", "127.0.0.1:25"], "--server-route '127.0.0.1:25': use HOST:PORT=HOST"),
        (["--server-route", "127.0.0.1:25=x"], "--server-route must be HOST:PORT"),
        (["--server-route", "192.0.2.1:25=127.0.0.1:25"], "both sides must be loopback"),
    ],
)
def test_bad_options_give_one_line_and_status_2(tmp_path: Path, args, message) -> None:
    result = subprocess.run(
        [EXE, "lab", *args],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=30,
    )
    assert result.returncode == 2
    first, *rest = result.stderr.splitlines()
    assert first.startswith("remediate: error: ") and message in first
    assert all(line.startswith("hint: ") for line in rest)
    assert result.stdout == ""


def test_address_parsing() -> None:
    assert Address.parse("127.0.0.1:5985", "x") == Address("127.0.0.1", 5985)
    assert Address.parse("[::1]:0", "x") == Address("::1", 0)
    assert Address.parse(":8080", "x") == Address("127.0.0.1", 8080)
    assert Address.parse("localhost:1", "x").is_loopback
    assert Address("::1", 0).url_host() == "[::1]"
    assert not Address("192.0.2.1", 0).is_loopback


def test_private_json_is_0600_and_replaced_atomically(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "ready.json"
    write_private_json(target, {"a": 1})
    write_private_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["ready.json"]


def test_extra_connectors_for_bulk_runs(tmp_path: Path) -> None:
    ready = tmp_path / "lab.json"
    process = subprocess.Popen(
        [EXE, "lab", "--ready-file", str(ready), "--extra-connectors", "3", "--state",
         str(tmp_path / "state.json")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path),
    )  # fmt: skip
    try:
        _wait_for(ready, process)
        with _connect(json.loads(ready.read_text())) as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet("Get-SendConnector")
            names = {str(c) for c in ps.invoke()}
        assert {"Bulk Relay 001", "Bulk Relay 002", "Bulk Relay 003"} <= names
        assert "Bulk Relay 004" not in names and "Outbound to Relay" in names
    finally:
        process.kill()
        process.communicate()
