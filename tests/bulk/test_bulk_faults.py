"""Faults during a bulk run: one endpoint refusing auth, one dropping the connection mid-run,
one connector whose change the lab rejects. The rest completes, the report says exactly what
happened, and a re-run finishes the job.

The mid-run faults are armed from inside the in-process lab: its Organization's
replace_connector (where a Set-SendConnector lands) is wrapped so that the first change on
that lab arms the fault. That is a hook in the real lab, not a mock of the client side.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from remediate.lab.faults import Faults
from remediate.lab.model import Connector
from remediate.lab.seed import EXTRA_PREFIX
from remediate.lab.server import Lab
from tests.bulk.bulk_helpers import bulk, cli_env, report_statuses, row, start_labs, write_rows

pytestmark = pytest.mark.e2e

EXTRAS = [f"{EXTRA_PREFIX} {n:03d}" for n in (1, 2, 3, 4)]
TLS = "BasicAuthRequireTLS"


def after_first_change(lab: Lab, action: Callable[[], None]) -> None:
    """Run ``action`` once, right after the first connector change the lab stores."""
    org = lab.organization
    store = org.replace_connector
    armed = []

    def replace(updated: Connector) -> None:
        store(updated)
        if not armed:
            armed.append(True)
            action()

    org.replace_connector = replace


def mechanism(lab: Lab, name: str) -> str:
    return lab.organization.connector(name).smart_host_auth_mechanism


def test_refused_auth_dropped_connection_and_rejected_change(tmp_path: Path) -> None:
    refusing, dropping, rejecting = labs = start_labs(tmp_path, 3, extra_connectors=4)
    try:
        refusing.faults.faults = Faults(refuse_auth=True)
        relay = refusing.relay_user
        rows = [row(refusing, connector=n, mechanism=TLS, credential_user=relay) for n in EXTRAS]
        rows += [row(dropping, connector=n, mechanism=TLS, credential_user=relay) for n in EXTRAS]
        rows += [
            row(rejecting, connector=EXTRAS[0], mechanism=TLS, credential_user=relay),
            row(rejecting, connector=EXTRAS[1], require_tls=True),
            row(rejecting, connector=EXTRAS[2], mechanism=TLS, credential_user=relay),
        ]
        spec = write_rows(tmp_path / "fix.yaml", rows)

        def drop_next_request() -> None:
            dropping.faults.faults = Faults(drop_on_request=dropping.faults.requests_seen + 1)

        def starttls_ignored_meanwhile() -> None:  # someone else changed it since the read
            org = rejecting.organization
            target = org.connector(EXTRAS[1])
            target.ignore_starttls = True
            org.replace_connector(target)

        after_first_change(dropping, drop_next_request)
        after_first_change(rejecting, starttls_ignored_meanwhile)
        env = cli_env(tmp_path)
        report = tmp_path / "first.json"
        first = bulk(env, "apply", str(spec), "--password-stdin", "--yes", "--report", str(report))
        assert first.returncode == 6, first.stdout + first.stderr
        statuses = report_statuses(report)

        # refusing: nothing read, every row skipped, the endpoint named as failed
        assert [statuses[(refusing.endpoint_url, n)] for n in EXTRAS] == ["skipped"] * 4
        assert {mechanism(refusing, n) for n in EXTRAS} == {"BasicAuth"}
        assert f"{refusing.endpoint_url}: failed (ok=0, changed=0, failed=0, skipped=4)" in (
            first.stdout
        )
        assert "refused the user name or password" in first.stdout

        # dropping: changed..., failed (every connector in flight when the connection dropped:
        # several pipelines are in flight at once), the rest skipped; the lab agrees
        on_drop = [statuses[(dropping.endpoint_url, n)] for n in EXTRAS]
        failed_at = on_drop.index("failed")
        in_flight = on_drop.count("failed")
        assert on_drop == (
            ["changed"] * failed_at
            + ["failed"] * in_flight
            + ["skipped"] * (4 - failed_at - in_flight)
        )
        assert failed_at <= 1
        for name, status in zip(EXTRAS, on_drop, strict=True):
            if status == "changed":
                assert mechanism(dropping, name) == TLS
            if status == "skipped":
                assert mechanism(dropping, name) == "BasicAuth"
        assert "may or may not have been applied" in first.stdout

        # rejecting: the lab refused the second row's change; the others went through
        assert [statuses[(rejecting.endpoint_url, n)] for n in EXTRAS[:3]] == [
            "changed",
            "failed",
            "changed",
        ]
        assert "RequireTLS and IgnoreSTARTTLS" in first.stdout
        assert rejecting.organization.connector(EXTRAS[1]).require_tls is False

        # the faults go away (the admin repairs IgnoreSTARTTLS); a re-run finishes the job
        refusing.faults.faults = Faults()
        repaired = rejecting.organization.connector(EXTRAS[1])
        repaired.ignore_starttls = False
        rejecting.organization.replace_connector(repaired)
        second_report = tmp_path / "second.json"
        second = bulk(
            env, "apply", str(spec), "--password-stdin", "--yes", "--report", str(second_report)
        )
        assert second.returncode == 0, second.stdout + second.stderr
        again = report_statuses(second_report)
        assert [again[(refusing.endpoint_url, n)] for n in EXTRAS] == ["changed"] * 4
        # a row in flight at the drop may or may not have been applied: the re-run finds it
        # done ("ok") or does it ("changed"); a skipped row was never sent, so it is changed now
        for name, status in zip(EXTRAS, on_drop, strict=True):
            expected = {"changed": {"ok"}, "failed": {"ok", "changed"}, "skipped": {"changed"}}
            assert again[(dropping.endpoint_url, name)] in expected[status], (name, status)
        assert [again[(rejecting.endpoint_url, n)] for n in EXTRAS[:3]] == [
            "ok",
            "changed",
            "ok",
        ]
        for lab in (refusing, dropping):
            assert {mechanism(lab, n) for n in EXTRAS} == {TLS}
        assert rejecting.organization.connector(EXTRAS[1]).require_tls is True
        third = bulk(env, "plan", str(spec), "--password-stdin")
        assert third.returncode == 0, third.stdout
    finally:
        for lab in labs:
            lab.stop()


def test_no_change_is_sent_without_its_backup(tmp_path: Path) -> None:
    (lab,) = start_labs(tmp_path, 1, extra_connectors=1)
    try:
        name = f"{EXTRA_PREFIX} 001"
        spec = write_rows(tmp_path / "fix.yaml", [row(lab, connector=name, port=2526)])
        env = cli_env(tmp_path)
        Path(env["XDG_STATE_HOME"]).write_text("not a directory", encoding="utf-8")
        report = tmp_path / "run.json"
        result = bulk(env, "apply", str(spec), "--password-stdin", "--yes", "--report", str(report))
        assert result.returncode == 6
        [[outcome]] = [e["connectors"] for e in json.loads(report.read_text())["endpoints"]]
        assert outcome["status"] == "failed" and outcome["backup"] is None
        # the connector's lock (in the state directory) cannot be taken, so nothing is sent
        assert outcome["message"].startswith("not sent: cannot create the directory")
        assert lab.organization.connector(name).port != 2526
    finally:
        lab.stop()
