"""bulk plan / apply / undo with --json against two labs over real HTTP: one document on
stdout valid against its shipped schema, the exit status the plain run has."""

from __future__ import annotations

from pathlib import Path

import pytest

from remediate.lab.server import Lab
from tests.bulk.bulk_helpers import bulk, cli_env, row, start_labs, write_rows
from tests.schema_check import checked

pytestmark = [pytest.mark.e2e]
RELAY = "Outbound to Relay"
PARTNER = "Outbound to Partner"


@pytest.fixture
def labs(tmp_path: Path):
    started = start_labs(tmp_path, 2)
    yield started
    for lab in started:
        lab.stop()


def test_bulk_plan_apply_undo_json(labs: list[Lab], tmp_path: Path) -> None:
    one, two = labs
    env = cli_env(tmp_path)
    spec = write_rows(
        tmp_path / "fix.yaml",
        [
            row(one, connector=RELAY, credential_user=one.relay_user),
            row(two, connector=PARTNER, port=two.smtp_address.port),
            row(two, connector="No Such Connector", enabled=True),
        ],
    )
    plain = bulk(env, "plan", str(spec), "--password-stdin")
    planned = bulk(env, "plan", str(spec), "--password-stdin", "--json")
    assert planned.returncode == plain.returncode == 6, planned.stderr  # a row refused
    before_port = two.organization.connector(PARTNER).port
    plan = checked("bulk-plan", planned.stdout)
    assert plan["totals"]["connectors_to_change"] == 2 and plan["totals"]["refused"] == 1
    by_endpoint = {e["endpoint"]: e for e in plan["endpoints"]}
    [relay] = by_endpoint[one.endpoint_url]["connectors"]
    assert relay["connector"] == RELAY and relay["pending"] is True
    assert relay["plan"]["event_id"] == 2016
    assert [u["line"] for u in by_endpoint[two.endpoint_url]["unmatched"]] != []
    assert "(before)" in planned.stderr  # the diff lines moved to stderr

    applied = bulk(env, "apply", str(spec), "--password-stdin", "--yes", "--json")
    assert applied.returncode == 6, applied.stderr  # the unmatched row counts as failed
    report = checked("bulk-report", applied.stdout)
    assert report["totals"]["changed"] == 2
    assert report["interrupted"] is False
    assert "total: " in applied.stderr

    report_file = tmp_path / "run.json"
    report_file.write_text(applied.stdout, encoding="utf-8")  # the same document --report writes
    undone = bulk(env, "undo", str(report_file), "--password-stdin", "--yes", "--json")
    assert undone.returncode == 0, undone.stderr
    totals = checked("bulk-report", undone.stdout)["totals"]
    # the port goes back; a credential is never restored (no backup holds a password)
    assert (totals["changed"], totals["ok"]) == (1, 1)
    assert two.organization.connector(PARTNER).port == before_port
