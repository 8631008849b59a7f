"""Backups (JSON + undo script, private files, round trip) and the audit log's lines."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import pytest

from remediate.core.errors import UsageError
from remediate.core.exchange import AuthMechanism, CredentialState, QueueInfo, TlsAuthLevel
from remediate.core.options import FixOptions
from remediate.core.planner import build_plan
from remediate.core.playbooks import find
from remediate.core.undo import undo_plan
from remediate.remote.connections import parse_server
from remediate.run import audit, backup, report
from remediate.run.execute import execute
from tests.executor_fakes import BROKEN, NAME, USER, FakeSession, relay_plan

CONNECTION = parse_server("http://127.0.0.1:5985/PowerShell")


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {"XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path)}


def tls_plan(what_if: bool = False):
    options = FixOptions(
        connector=NAME,
        mechanism=AuthMechanism.BASIC_AUTH_REQUIRE_TLS,
        username=USER,
        smart_hosts=("relay.contoso.com", "relay2.contoso.com"),
        tls_auth_level=TlsAuthLevel.DOMAIN_VALIDATION,
        tls_domain="contoso.com",
        require_tls=True,
    )
    return build_plan(find("2016"), options, current=BROKEN, what_if=what_if)


@pytest.mark.parametrize("make", [relay_plan, tls_plan, lambda: tls_plan(what_if=True)])
def test_plans_survive_json(make) -> None:
    plan = make()
    text = json.dumps(backup.plan_to_json(plan))
    assert backup.plan_from_json(json.loads(text)) == plan


def test_state_dir_defaults_under_home() -> None:
    assert backup.state_dir({"HOME": "/home/ann"}) == Path("/home/ann/.local/state/remediate")
    assert backup.backup_dir({"XDG_STATE_HOME": "/s"}) == Path("/s/remediate/backups")


def test_backup_is_private_and_round_trips(environ: dict[str, str]) -> None:
    plan = tls_plan()
    saved = backup.write_backup(CONNECTION, BROKEN, plan, environ=environ)
    assert saved.path.parent == backup.backup_dir(environ)
    assert stat.S_IMODE(saved.path.parent.stat().st_mode) == 0o700
    for path in (saved.path, saved.script):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = backup.load_backup(saved.path)
    assert loaded == saved
    assert loaded.connector == BROKEN and loaded.applied == plan
    assert loaded.endpoint == CONNECTION.label and loaded.url == CONNECTION.url
    assert loaded.undo_plan() == undo_plan(BROKEN, plan)
    assert loaded.undo_plan(what_if=True) == undo_plan(BROKEN, plan, what_if=True)


def test_backup_script_is_the_rendered_undo_plan(environ: dict[str, str]) -> None:
    saved = backup.write_backup(CONNECTION, BROKEN, tls_plan(), environ=environ)
    raw = saved.script.read_bytes()  # for Windows PowerShell 5.1: UTF-8 BOM, CRLF
    assert raw.startswith(b"\xef\xbb\xbf") and b"\n" not in raw.replace(b"\r\n", b"")
    text = raw.decode("utf-8-sig")
    commands = [line for line in text.splitlines() if line.endswith(":$false")]
    assert commands == [
        "Set-SendConnector -Identity 'Outbound to Relay' -SmartHosts 'smtp.relay.example' "
        "-RequireTLS $false -TlsAuthLevel $null -TlsDomain $null -Confirm:$false"
    ]


def test_two_backups_of_the_same_connector_do_not_collide(environ: dict[str, str]) -> None:
    first = backup.write_backup(CONNECTION, BROKEN, relay_plan(), environ=environ)
    second = backup.write_backup(CONNECTION, BROKEN, relay_plan(), environ=environ)
    assert first.path != second.path and first.path.exists() and second.path.exists()


def test_load_backup_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(UsageError, match=re.escape("nope.json: no such backup file")):
        backup.load_backup(missing)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    with pytest.raises(UsageError, match=re.escape("garbage.json: not a remediate backup")):
        backup.load_backup(garbage)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": 1, "connector": {"Name": "x"}}))
    with pytest.raises(
        UsageError, match=re.escape("other.json: not a remediate backup (missing 'endpoint'")
    ):
        backup.load_backup(other)
    future = tmp_path / "future.json"
    future.write_text(json.dumps({"format": 99}))
    with pytest.raises(UsageError, match="unknown format 99"):
        backup.load_backup(future)


def test_audit_lines_hold_old_and_new_values_and_never_a_password(
    environ: dict[str, str],
) -> None:
    plan = tls_plan()
    before = BROKEN.replace(credential=CredentialState.SET)
    session = FakeSession()
    result = execute(session, plan, lambda ref: "Audit-canary-77")
    path = audit.record(CONNECTION, plan, before, result, environ=environ)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "Audit-canary-77" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == len(plan.changes)
    for line in lines:
        assert line["endpoint"] == CONNECTION.label and line["connector"] == NAME
        assert line["event"] == 2016 and line["result"] == "changed" and line["operator"]
    changes = {k: v for line in lines for k, v in line["changes"].items()}
    # Exchange never returns the old user name: the old value is only "set"
    assert changes["AuthenticationCredential"] == {
        "old": {"credential": "set"},
        "new": {"credential_user": USER},
    }
    assert changes["SmartHosts"] == {
        "old": ["smtp.relay.example"],
        "new": ["relay.contoso.com", "relay2.contoso.com"],
    }
    assert changes["TlsAuthLevel"] == {"old": None, "new": "DomainValidation"}
    assert changes["RequireTLS"] == {"old": False, "new": True}


def test_audit_appends(environ: dict[str, str]) -> None:
    plan = relay_plan()
    result = execute(FakeSession(), plan, lambda ref: "x-pass-1")
    audit.record(CONNECTION, plan, BROKEN, result, environ=environ)
    path = audit.record(CONNECTION, plan, BROKEN, result, environ=environ)
    assert len(path.read_text().splitlines()) == 2 * len(plan.changes)


def test_audit_marks_what_if_steps(environ: dict[str, str]) -> None:
    plan = relay_plan(what_if=True)
    result = execute(FakeSession(), plan, lambda ref: "x-pass-2")
    lines = audit.entries(CONNECTION, plan, BROKEN, result, operator="ann")
    assert {line["result"] for line in lines} == {"what-if"}
    assert {line["operator"] for line in lines} == {"ann"}


def test_before_after_lists_only_what_changed() -> None:
    after = BROKEN.replace(credential=CredentialState.SET, port=2525)
    assert report.before_after(BROKEN, after) == [
        "PROPERTY                  BEFORE   AFTER",
        "AuthenticationCredential  not set  set",
        "Port                      587      2525",
    ]
    assert report.before_after(BROKEN, BROKEN) == ["No setting of 'Outbound to Relay' changed."]


def test_queue_lines_carry_the_diagnosis() -> None:
    failed = QueueInfo(
        "EX01\\4",
        status="Retry",
        message_count=3,
        last_error="451 4.4.0 Primary target IP address responded with: "
        '"454 4.7.0 Temporary authentication failure." Attempted failover to alternate host',
    )
    lines = report.queue_lines([failed])
    assert lines[0].split() == ["QUEUE", "STATUS", "MESSAGES", "LAST", "ERROR"]
    assert lines[1].split()[:4] == ["EX01\\4", "Retry", "3", "451"]
    assert lines[2].startswith("EX01\\4: ") and len(lines) == 3
    assert report.queue_lines([]) == [
        "No smart-host queue for this connector (nothing waiting to be sent)."
    ]


def test_the_only_relay_user_name_known_is_the_one_remediate_set_from_its_audit_log(
    environ: dict[str, str],
) -> None:
    """Exchange never returns the relay user name (exchange-notes.md): the tool can name only
    the one it sent itself, and labels it so."""
    assert audit.last_set_credential(CONNECTION.url, NAME, environ) is None
    plan = relay_plan()
    result = execute(FakeSession(), plan, lambda ref: "x-pass-3")
    audit.record(CONNECTION, plan, BROKEN, result, environ=environ)
    found = audit.last_set_credential(CONNECTION.url, NAME.upper(), environ)
    assert found is not None and found.username == USER
    label = found.label()
    assert label.startswith(f"{USER} (set by remediate on ") and "audit log" in label
    assert audit.last_set_credential("http://elsewhere/PowerShell", NAME, environ) is None
    what_if = relay_plan(what_if=True)
    audit.record(CONNECTION, what_if, BROKEN, execute(FakeSession(), what_if, lambda r: "x"),
                 environ=environ)  # fmt: skip
    assert audit.last_set_credential(CONNECTION.url, NAME, environ) == found  # not a change
