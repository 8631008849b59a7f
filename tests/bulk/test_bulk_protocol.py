"""Bulk over the protocol's limits, the installed command against real labs: a new shell
before MaxConcurrentCommandsPerShell (pypsrp issue 148), at most --in-flight pipelines at
once in one shell, and each connector's error, backup and result its own."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from remediate.lab.model import Connector
from remediate.lab.seed import EXTRA_PREFIX
from remediate.lab.server import CmdletLatency
from tests.bulk.bulk_helpers import (
    ADMIN_PASSWORD,
    RELAY_SECRET,
    bulk,
    cli_env,
    report_statuses,
    row,
    start_labs,
    write_rows,
)

pytestmark = pytest.mark.e2e


def _names(count: int) -> list[str]:
    return [f"{EXTRA_PREFIX} {n:03d}" for n in range(1, count + 1)]


def test_a_new_shell_before_the_command_quota(tmp_path: Path) -> None:
    """A lab whose shells take 5 commands: 12 changes (plus the reads) need several shells;
    the tool learns the quota from the first refusal and recycles, and every change lands."""
    (lab,) = start_labs(tmp_path, 1, extra_connectors=12, max_commands_per_shell=5)
    try:
        names = _names(12)
        spec = write_rows(
            tmp_path / "ports.yaml", [row(lab, connector=n, port=2700) for n in names]
        )
        report = tmp_path / "run.json"
        done = bulk(
            cli_env(tmp_path),
            "apply",
            str(spec),
            "--yes",
            "--password-stdin",
            "--report",
            str(report),
        )
        assert done.returncode == 0, done.stdout + done.stderr
        statuses = report_statuses(report)
        assert [statuses[(lab.endpoint_url, n)] for n in names] == ["changed"] * 12
        assert {lab.organization.connector(n).port for n in names} == {2700}
        assert lab.endpoint.shells_created >= 3  # 12 changes + 2 reads, 5 commands a shell
        assert lab.endpoint.shell_count == 0  # each shell was closed, none left behind
    finally:
        lab.stop()


@pytest.mark.parametrize("in_flight", [1, 3])
def test_at_most_in_flight_pipelines_at_once(tmp_path: Path, in_flight: int) -> None:
    # long enough that every pipeline the window allows is sent before the first ends, even
    # on a loaded 2-core CI machine (0.25 s was not: a Command round trip can take 0.1 s)
    latency = CmdletLatency(0.0, {"Set-SendConnector": 0.6})
    (lab,) = start_labs(tmp_path, 1, extra_connectors=7, cmdlet_latency=latency)
    try:
        names = _names(7)
        spec = write_rows(
            tmp_path / "ports.yaml", [row(lab, connector=n, port=2701) for n in names]
        )
        done = bulk(
            cli_env(tmp_path),
            "apply",
            str(spec),
            "--yes",
            "--password-stdin",
            "--in-flight",
            str(in_flight),
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert {lab.organization.connector(n).port for n in names} == {2701}
        assert lab.endpoint.peak_pipelines == in_flight
    finally:
        lab.stop()


def test_each_connector_keeps_its_own_error_and_backup(tmp_path: Path) -> None:
    """Six changes in flight at once (each Set-SendConnector 1 s on the lab); right after
    the first lands, someone sets IgnoreSTARTTLS on another connector, so Exchange refuses
    that one's RequireTLS: it fails with its own message, the others change, each with its
    own backup file, and the run's one undo script lists every connector backed up."""
    latency = CmdletLatency(0.0, {"Set-SendConnector": 1.0})  # all six sent before one ends
    (lab,) = start_labs(tmp_path, 1, extra_connectors=6, cmdlet_latency=latency)
    try:
        names = _names(6)
        org = lab.organization
        store = org.replace_connector
        picked: list[str] = []

        def replace(updated: Connector) -> None:
            store(updated)
            if not picked:  # the first change: spoil one still to come
                other = next(n for n in names if not org.connector(n).require_tls)
                picked.append(other)
                spoiled = org.connector(other)
                spoiled.ignore_starttls = True
                store(spoiled)

        org.replace_connector = replace
        rows = [row(lab, connector=n, require_tls=True) for n in names]
        spec = write_rows(tmp_path / "tls.yaml", rows)
        report = tmp_path / "run.json"
        done = bulk(
            cli_env(tmp_path),
            "apply",
            str(spec),
            "--yes",
            "--password-stdin",
            "--in-flight",
            "6",
            "--report",
            str(report),
        )
        assert done.returncode == 6, done.stdout + done.stderr
        assert lab.endpoint.peak_pipelines == 6
        data = json.loads(report.read_text(encoding="utf-8"))
        outcomes = {c["connector"]: c for e in data["endpoints"] for c in e["connectors"]}
        (refused,) = picked
        assert outcomes[refused]["status"] == "failed"
        assert outcomes[refused]["message"].startswith("refused by Exchange:")
        assert "IgnoreSTARTTLS" in outcomes[refused]["message"]
        others = [outcomes[n] for n in names if n != refused]
        assert [o["status"] for o in others] == ["changed"] * 5
        assert all(o["message"] == "" for o in others)
        backups = [o["backup"] for o in outcomes.values()]
        assert len(set(backups)) == 6 and all(Path(b).is_file() for b in backups)
        assert org.connector(refused).require_tls is False
        assert all(org.connector(n).require_tls for n in names if n != refused)
        (undo,) = {o["undo_script"] for o in outcomes.values()}
        text = Path(undo).read_text(encoding="utf-8")
        assert all(f": {n} =====" in text for n in names)
        assert (Path(undo).stat().st_mode & 0o777) == 0o600
    finally:
        lab.stop()


def test_one_read_per_endpoint_when_not_asked(tmp_path: Path) -> None:
    """With --yes the connectors named are locked before the one Get-SendConnector, so that
    read plans the changes: no second read under the locks (issue 15: apply's repeated
    reads). A row naming a connector by its GUID locks the real name only after the read,
    so that endpoint is read again under the lock."""
    by_name, by_guid = start_labs(tmp_path, 2, extra_connectors=5)
    try:
        names = _names(5)
        guid = by_guid.organization.connector(names[0]).guid
        rows = [row(by_name, connector=n, port=2702) for n in names]
        rows.append(row(by_guid, connector=guid, port=2702))
        spec = write_rows(tmp_path / "ports.yaml", rows)
        done = bulk(cli_env(tmp_path), "apply", str(spec), "--yes", "--password-stdin")
        assert done.returncode == 0, done.stdout + done.stderr
        assert {by_name.organization.connector(n).port for n in names} == {2702}
        assert by_guid.organization.connector(names[0]).port == 2702
        ran = by_name.organization.cmdlets_run()
        assert (ran["Get-SendConnector"], ran["Set-SendConnector"]) == (1, 5)
        assert by_guid.organization.cmdlets_run()["Get-SendConnector"] == 2
    finally:
        by_name.stop()
        by_guid.stop()


def test_read_again_under_the_locks_after_asking(tmp_path: Path) -> None:
    """After a confirmation (time has passed, someone may have changed a connector) the run
    reads and plans again under the locks: here the connector changed in between, and the
    change planned from the first read is not sent."""
    from remediate.bulk.runner import BulkRun, Status
    from remediate.bulk.spec import load
    from remediate.remote.connections import ProfileStore

    (lab,) = start_labs(tmp_path, 1, extra_connectors=2)
    try:
        names = _names(2)
        spec_file = write_rows(
            tmp_path / "ports.yaml", [row(lab, connector=n, port=2703) for n in names]
        )
        environ = cli_env(tmp_path)
        spec = load(spec_file, ProfileStore(environ=environ))
        with BulkRun(
            spec, dict.fromkeys(spec.endpoints(), ADMIN_PASSWORD), environ=environ, lock=True
        ) as run:
            (state,) = run.read()
            assert len(state.pending) == 2
            changed = replace(lab.organization.connector(names[0]), port=2703)
            lab.organization.replace_connector(changed)  # "meanwhile", by someone else
            run.apply(lambda ref: RELAY_SECRET, read_again=True)
        statuses = {o.connector: o.status for o in state.outcomes}
        assert statuses == {names[0]: Status.OK, names[1]: Status.CHANGED}
        ran = lab.organization.cmdlets_run()
        assert (ran["Get-SendConnector"], ran["Set-SendConnector"]) == (2, 1)
    finally:
        lab.stop()
