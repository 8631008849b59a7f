"""The executor: step order, stop at the first failure, Ctrl-C, the summary, apply_plan.

Uses FakeSession (tests/executor_fakes.py): a fake, because failure ordering and a Ctrl-C in
mid-step are easier to force exactly; tests/e2e/ covers the same paths against the real lab.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remediate.core.errors import ConnectionFailed, Interrupted, SecretStoreError
from remediate.core.exchange import CredentialState
from remediate.core.plan import CredentialRef, Step
from remediate.run.execute import ExecutionInterrupted, apply_plan, describe, execute
from tests.executor_fakes import BROKEN, USER, FakeSession, relay_plan

PASSWORD = "Canary-unit-8f3b"


def credential(ref: CredentialRef) -> str:
    assert ref.username == USER
    return PASSWORD


def names(steps: list[Step]) -> list[str]:
    return [s.cmdlet for s in steps]


def test_every_step_runs_in_order_and_changes_are_counted() -> None:
    plan = relay_plan()
    session = FakeSession()
    result = execute(session, plan, credential)
    assert session.sent == list(plan.steps)
    assert result.ok and result.not_run == [] and result.failed_step is None
    assert names(result.changed_steps) == ["Set-SendConnector", "Set-SendConnector", "Retry-Queue"]
    assert session.passwords == [PASSWORD]
    summary = result.summary()
    assert summary.splitlines()[0].startswith(f"All {len(plan.steps)} step(s) ran; 3 changed")
    assert "3. Set-SendConnector -AuthenticationCredential: ran, changed" in summary
    assert "1. Get-SendConnector: ran (read)" in summary
    assert PASSWORD not in summary


def test_a_failed_change_stops_the_remaining_changes() -> None:
    plan = relay_plan()
    session = FakeSession(fail_at=2)  # the credential step
    result = execute(session, plan, credential)
    assert not result.ok
    assert session.sent == list(plan.steps[:3])
    assert result.failed_step is not None and result.failed_step.step is plan.steps[2]
    assert result.not_run == list(plan.steps[3:])
    assert result.changed_steps == []
    lines = result.summary().splitlines()
    assert lines[0] == (
        "Stopped at a failed step (Set-SendConnector -AuthenticationCredential): "
        f"0 change(s) applied before it, {len(plan.steps) - 3} step(s) not run."
    )
    assert lines[3] == "  3. Set-SendConnector -AuthenticationCredential: FAILED (refused)"
    assert lines[4] == "  4. Set-SendConnector -RequireTLS: not run"
    assert len(lines) == 1 + len(plan.steps)


def test_a_failure_after_a_change_says_what_was_applied() -> None:
    plan = relay_plan()
    result = execute(FakeSession(fail_at=3), plan, credential)
    assert names(result.changed_steps) == ["Set-SendConnector"]
    assert "1 change(s) applied before it" in result.summary()
    assert "3. Set-SendConnector -AuthenticationCredential: ran, changed" in result.summary()


def test_ctrl_c_during_a_step_stops_and_the_message_is_the_summary() -> None:
    plan = relay_plan()
    with pytest.raises(ExecutionInterrupted) as caught:
        execute(FakeSession(interrupt_at=3), plan, credential)
    error = caught.value
    assert isinstance(error, Interrupted) and error.exit_code == 130
    assert error.result.interrupted is plan.steps[3]
    assert error.result.not_run == list(plan.steps[4:])
    assert str(error) == error.result.summary()
    assert "4. Set-SendConnector -RequireTLS: cut short by Ctrl-C while sent" in str(error)
    assert str(error).startswith("Stopped by Ctrl-C: 1 change(s) applied before it;")


def test_a_lost_connection_keeps_its_error_and_carries_the_summary() -> None:
    plan = relay_plan()
    lost = ConnectionFailed("http://ex01/PowerShell closed the connection without an answer")
    with pytest.raises(ConnectionFailed) as caught:
        execute(FakeSession(raise_at=(3, lost)), plan, credential)
    assert caught.value is lost and lost.exit_code == 5
    result = lost.result  # type: ignore[attr-defined]
    assert result.interrupted is plan.steps[3] and result.not_run == list(plan.steps[4:])
    assert lost.hint == result.summary()
    assert "4. Set-SendConnector -RequireTLS: cut short by an error (http://ex01" in lost.hint


def test_ctrl_c_in_the_progress_callback_stops_before_the_next_step() -> None:
    plan = relay_plan()
    session = FakeSession()

    def on_step(step: Step, _result: object) -> None:
        if step is plan.steps[2]:
            raise KeyboardInterrupt

    with pytest.raises(ExecutionInterrupted) as caught:
        execute(session, plan, credential, on_step=on_step)
    assert session.sent == list(plan.steps[:3])
    assert caught.value.result.interrupted is None
    assert caught.value.result.not_run == list(plan.steps[3:])


def test_what_if_changes_nothing() -> None:
    plan = relay_plan(what_if=True)
    result = execute(FakeSession(), plan, credential)
    assert result.ok and result.changed_steps == []
    assert result.headline() == "What-if run: nothing was changed."
    assert "ran with -WhatIf, changed nothing" in result.summary()


def test_exchange_saying_nothing_was_modified_is_no_change() -> None:
    warning = (
        "The command completed successfully but no settings of 'Outbound to Relay' have "
        "been modified."
    )
    result = execute(FakeSession(warnings=[warning]), relay_plan(), credential)
    assert result.changed_steps == []
    assert "ran, unchanged (no settings modified)" in result.summary()


def test_describe_names_parameters_not_values() -> None:
    step = relay_plan().steps[2]
    assert describe(step) == "Set-SendConnector -AuthenticationCredential"


@pytest.fixture
def state(tmp_path: Path) -> dict[str, str]:
    return {"XDG_STATE_HOME": str(tmp_path / "state"), "HOME": str(tmp_path)}


def _connection():
    from remediate.remote.connections import parse_server

    return parse_server("http://127.0.0.1:5985/PowerShell")


def test_apply_plan_backs_up_executes_audits_and_rereads(state: dict[str, str]) -> None:
    after = BROKEN.replace(credential=CredentialState.SET, require_tls=True)
    session = FakeSession(after=after)
    applied = apply_plan(session, relay_plan(), BROKEN, _connection(), credential, environ=state)
    assert applied.result.ok and applied.after == after
    assert applied.backup is not None and applied.backup.path.exists()
    assert applied.audit_path == Path(state["XDG_STATE_HOME"]) / "remediate" / "audit.log"
    lines = [json.loads(line) for line in applied.audit_path.read_text().splitlines()]
    assert [line["result"] for line in lines] == ["changed", "changed", "changed"]
    files = [*Path(state["XDG_STATE_HOME"]).rglob("*")]
    assert all(PASSWORD not in f.read_text() for f in files if f.is_file())


def test_apply_plan_asks_for_passwords_before_anything(state: dict[str, str]) -> None:
    def missing(ref: CredentialRef) -> str:
        raise SecretStoreError(f"no password for relay account {ref.username}")

    session = FakeSession()
    with pytest.raises(SecretStoreError):
        apply_plan(session, relay_plan(), BROKEN, _connection(), missing, environ=state)
    assert session.sent == []
    assert not Path(state["XDG_STATE_HOME"]).exists()


def test_apply_plan_what_if_writes_no_backup_and_no_audit(state: dict[str, str]) -> None:
    applied = apply_plan(
        FakeSession(), relay_plan(what_if=True), BROKEN, _connection(), credential, environ=state
    )
    assert applied.backup is None and applied.audit_path is None
    assert not Path(state["XDG_STATE_HOME"]).exists()


def test_apply_plan_audits_a_failed_run(state: dict[str, str]) -> None:
    applied = apply_plan(
        FakeSession(fail_at=3), relay_plan(), BROKEN, _connection(), credential, environ=state
    )
    assert not applied.result.ok
    assert applied.audit_path is not None
    lines = [json.loads(line) for line in applied.audit_path.read_text().splitlines()]
    assert [(line["step"], line["result"]) for line in lines] == [
        (3, "changed"),
        (4, "failed"),
        (6, "not run"),
    ]
    assert lines[1]["error"] == "refused"


@pytest.mark.parametrize(
    ("session", "error"),
    [
        (FakeSession(interrupt_at=3), ExecutionInterrupted),
        (FakeSession(raise_at=(3, ConnectionFailed("lost"))), ConnectionFailed),
    ],
)
def test_apply_plan_audits_a_run_cut_short_then_reraises(
    state: dict[str, str], session: FakeSession, error: type[Exception]
) -> None:
    with pytest.raises(error):
        apply_plan(
            session,
            relay_plan(),
            BROKEN,
            _connection(),
            credential,
            environ=state,
        )
    log = Path(state["XDG_STATE_HOME"]) / "remediate" / "audit.log"
    results = [json.loads(line)["result"] for line in log.read_text().splitlines()]
    assert results == ["changed", "interrupted", "not run"]
