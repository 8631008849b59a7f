"""The recap and the JSON report, from endpoint states as a run leaves them."""

from __future__ import annotations

from pathlib import Path

import pytest

from remediate.bulk.report import read_report, recap_lines, to_json, write_report
from remediate.bulk.runner import ConnectorOutcome, EndpointState, Status
from remediate.core.errors import UsageError
from remediate.remote.connections import AuthMethod, Connection
from remediate.run.report import table

EX01 = Connection(server="ex01.contoso.com", port=80, profile="ex01")
EX02 = Connection(
    server="ex02.fabrikam.com",
    port=443,
    scheme="https",
    auth=AuthMethod.BASIC,
    username="FABRIKAM\\exadmin",
)


def states() -> list[EndpointState]:
    first = EndpointState(EX01, [])
    first.outcomes = [
        ConnectorOutcome("Outbound to Archive", 3, Status.OK, "already as wanted"),
        ConnectorOutcome(
            "Outbound to Relay",
            2,
            Status.CHANGED,
            "",
            ["SmartHostAuthMechanism"],
            backup=Path("/s/b.json"),
            undo_script=Path("/s/b-undo.ps1"),
            audit=Path("/s/a.log"),
        ),
    ]
    second = EndpointState(EX02, [], error="ex02 refused the user name or password")
    second.outcomes = [ConnectorOutcome("Relay", 7, Status.SKIPPED, second.error or "")]
    return [first, second]


def test_recap_per_connector_per_endpoint_and_totals() -> None:
    lines = recap_lines(states())
    assert lines[:4] == table(
        ("ENDPOINT", "CONNECTOR", "STATUS", "DETAIL"),
        [
            ("ex01", "Outbound to Relay", "changed", "SmartHostAuthMechanism"),
            ("ex01", "Outbound to Archive", "ok", "already as wanted"),
            (EX02.url, "Relay", "skipped", "ex02 refused the user name or password"),
        ],
    )
    assert lines[5:] == [
        "ex01: changed (ok=1, changed=1, failed=0, skipped=0)",
        f"{EX02.url}: failed (ok=0, changed=0, failed=0, skipped=1)",
        "  ex02 refused the user name or password",
        "total: ok=1, changed=1, failed=0, skipped=1",
    ]


def test_json_report_round_trip_private_and_without_password(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    data = to_json(states(), Path("rotate.yaml"), started=datetime.now(UTC), interrupted=False)
    path = tmp_path / "run.json"
    write_report(path, data)
    assert path.stat().st_mode & 0o777 == 0o600
    loaded = read_report(path)
    assert loaded["totals"] == {"ok": 1, "changed": 1, "failed": 0, "skipped": 1}
    first, second = loaded["endpoints"]
    assert first["connection"]["profile"] == "ex01" and second["connection"]["profile"] is None
    assert second["connection"]["username"] == "FABRIKAM\\exadmin"
    assert "password" not in second["connection"]
    relay = first["connectors"][0]
    assert relay == {
        "connector": "Outbound to Relay",
        "line": 2,
        "status": "changed",
        "message": "",
        "changes": ["SmartHostAuthMechanism"],
        "backup": "/s/b.json",
        "undo_script": "/s/b-undo.ps1",
        "audit": "/s/a.log",
    }
    assert second["status"] == "failed" and second["error"].startswith("ex02 refused")


def test_read_report_refuses_other_files(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"connectors": []}', encoding="utf-8")
    with pytest.raises(UsageError, match="not a bulk report written by"):
        read_report(other)
    with pytest.raises(UsageError, match="cannot read the report"):
        read_report(tmp_path / "missing.json")
