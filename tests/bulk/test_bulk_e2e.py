"""`remediate bulk` end to end: the installed executable against three labs at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remediate.lab.seed import EXTRA_PREFIX
from remediate.lab.server import Lab
from tests.bulk.bulk_helpers import (
    backups,
    bulk,
    cli_env,
    report_statuses,
    row,
    start_labs,
    write_rows,
)

pytestmark = pytest.mark.e2e

RELAY = "Outbound to Relay"
PARTNER = "Outbound to Partner"
ARCHIVE = "Outbound to Archive"
LEGACY = "Outbound to Legacy"
INTERNET = "Internet Mail"
EXTRAS = [f"{EXTRA_PREFIX} {n:03d}" for n in (1, 2, 3)]


@pytest.fixture
def labs(tmp_path: Path):
    started = start_labs(tmp_path, 3, extra_connectors=3)
    yield started
    for lab in started:
        lab.stop()


def connector(lab: Lab, name: str):
    return lab.organization.connector(name)


def mixed_rows(labs: list[Lab]) -> list[str]:
    one, two, three = labs
    relay_user = one.relay_user
    return [
        row(one, connector=RELAY, credential_user=relay_user),
        row(one, connector=ARCHIVE, mechanism="BasicAuth", credential_user=relay_user),
        row(two, connector=PARTNER, port=two.smtp_address.port),
        row(two, connector=LEGACY, enabled=True),
        row(
            three,
            smart_host_match="localhost",
            mechanism="BasicAuthRequireTLS",
            credential_user=relay_user,
        ),
        row(three, connector=connector(three, INTERNET).guid, enabled=True),
    ]


def test_lab_seeds_extra_connectors_once(labs: list[Lab], tmp_path: Path) -> None:
    lab = labs[0]
    names = [c.name for c in lab.organization.connectors()]
    assert [n for n in names if n.startswith(EXTRA_PREFIX)] == EXTRAS
    lab.stop()
    again = Lab(
        state_file=tmp_path / "lab1-state.json", workdir=tmp_path / "again", extra_connectors=4
    )
    again.start()
    try:
        extra = [c.name for c in again.organization.connectors() if c.name in EXTRAS]
        assert extra == EXTRAS  # kept, not duplicated
        assert again.organization.find_connector(f"{EXTRA_PREFIX} 004") is not None
    finally:
        again.stop()


def test_plan_apply_three_endpoints_then_second_run_changes_nothing(
    labs: list[Lab], tmp_path: Path
) -> None:
    one, two, three = labs
    env = cli_env(tmp_path)
    spec = write_rows(tmp_path / "fix.yaml", mixed_rows(labs))
    changed_on_three = [RELAY, PARTNER, ARCHIVE, LEGACY, *EXTRAS]
    before = {lab.endpoint_url: lab.organization.connectors() for lab in labs}

    planned = bulk(env, "plan", str(spec), "--password-stdin", "--output", str(tmp_path / "f.ps1"))
    assert planned.returncode == 10, planned.stderr
    out = planned.stdout
    assert f"--- {one.endpoint_url}: {RELAY} (before)" in out
    assert f"=== {one.endpoint_url}: {ARCHIVE}: ok, nothing to change" in out
    assert f"-Port: {connector(two, PARTNER).port}\n+Port: {two.smtp_address.port}" in out
    assert "-SmartHostAuthMechanism: BasicAuth\n+SmartHostAuthMechanism: BasicAuthRequireTLS" in out
    assert "10 connector(s) to change" in out
    script = (tmp_path / "f.ps1").read_text(encoding="utf-8")
    assert script.count("# ===== http://") == 10
    assert labs[0].organization.connectors() == before[one.endpoint_url]  # plan changed nothing

    applied = bulk(
        env, "apply", str(spec), "--password-stdin", "--yes", "--report", str(tmp_path / "run.json")
    )
    assert applied.returncode == 0, applied.stdout + applied.stderr
    expected = {
        (one.endpoint_url, RELAY): "changed",
        (one.endpoint_url, ARCHIVE): "ok",
        (two.endpoint_url, PARTNER): "changed",
        (two.endpoint_url, LEGACY): "changed",
        **{(three.endpoint_url, name): "changed" for name in changed_on_three},
        (three.endpoint_url, INTERNET): "ok",
    }
    assert report_statuses(tmp_path / "run.json") == expected
    assert "total: ok=2, changed=10, failed=0, skipped=0" in applied.stdout
    assert connector(one, RELAY).credential.username == one.relay_user
    assert connector(two, PARTNER).port == two.smtp_address.port
    assert connector(two, LEGACY).enabled is True
    assert {connector(three, n).smart_host_auth_mechanism for n in changed_on_three} == {
        "BasicAuthRequireTLS"
    }
    report = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    saved = [c["backup"] for e in report["endpoints"] for c in e["connectors"] if c["backup"]]
    assert sorted(saved) == [str(p) for p in backups(env)] and len(saved) == 10
    assert (tmp_path / "run.json").stat().st_mode & 0o777 == 0o600

    after_first = {lab.endpoint_url: lab.organization.connectors() for lab in labs}
    again = bulk(
        env,
        "apply",
        str(spec),
        "--password-stdin",
        "--yes",
        "--report",
        str(tmp_path / "again.json"),
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert set(report_statuses(tmp_path / "again.json").values()) == {"ok"}
    assert {lab.endpoint_url: lab.organization.connectors() for lab in labs} == after_first
    assert len(backups(env)) == 10
    assert bulk(env, "plan", str(spec), "--password-stdin").returncode == 0

    undone = bulk(env, "undo", str(tmp_path / "run.json"), "--password-stdin", "--yes")
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert (
        connector(two, PARTNER).port
        == before[two.endpoint_url][[c.name for c in before[two.endpoint_url]].index(PARTNER)].port
    )
    assert connector(two, LEGACY).enabled is False
    assert {connector(three, n).smart_host_auth_mechanism for n in EXTRAS} == {"BasicAuth"}


def test_malformed_file_lists_every_problem_and_connects_nowhere(
    labs: list[Lab], tmp_path: Path
) -> None:
    one = labs[0]
    spec = tmp_path / "bad.csv"
    spec.write_text(
        "endpoint,auth,user,connector,port,mechanism\n"
        f"{one.endpoint_url},basic,admin,{RELAY},70000,\n"
        f"{one.endpoint_url},basic,admin,{PARTNER},25,Sometimes\n"
        f"{one.endpoint_url},basic,,{ARCHIVE},25,\n",
        encoding="utf-8",
    )
    result = bulk(cli_env(tmp_path), "apply", str(spec), "--password-stdin", "--yes")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[:3] == [
        f"{spec}:2: port: '70000' is not a port number (0-65535)",
        f"{spec}:3: mechanism: 'Sometimes' is not one of None, BasicAuth, "
        "BasicAuthRequireTLS, ExchangeServer, ExternalAuthoritative",
        f"{spec}:4: auth basic: give user too",
    ]
    assert lines[3] == f"remediate: error: {spec}: 3 problems; nothing was sent"
    assert result.stdout == ""
    assert all(lab.faults.requests_seen == 0 for lab in labs)


def test_rows_by_profile_and_plan_exit_statuses(labs: list[Lab], tmp_path: Path) -> None:
    from dataclasses import replace

    from remediate.remote.connections import AuthMethod, ProfileStore, parse_server

    one, two, _ = labs
    env = cli_env(tmp_path)
    store = ProfileStore(environ=env)
    connection = parse_server(one.endpoint_url)
    store.save(replace(connection, auth=AuthMethod.BASIC, username=one.admin_user, profile="ex01"))
    by_profile = tmp_path / "profile.csv"
    by_profile.write_text(
        f"endpoint,connector,port\nex01,{PARTNER},{one.smtp_address.port}\n", encoding="utf-8"
    )
    planned = bulk(env, "plan", str(by_profile), "--password-stdin")
    assert planned.returncode == 10, planned.stdout + planned.stderr
    assert f"--- ex01: {PARTNER} (before)" in planned.stdout

    unknown = write_rows(tmp_path / "unknown.yaml", [row(one, connector="Nowhere", port=25)])
    result = bulk(env, "plan", str(unknown), "--password-stdin")
    assert result.returncode == 6
    assert f"!!! {one.endpoint_url}: line 2: Send connector 'Nowhere' not found" in result.stdout

    unreachable = write_rows(tmp_path / "down.yaml", [row(two, connector=PARTNER, port=25)])
    url = two.endpoint_url
    two.stop()
    result = bulk(env, "plan", str(unreachable), "--password-stdin")
    assert result.returncode == 5
    assert f"!!! {url}: not read:" in result.stdout
