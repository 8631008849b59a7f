"""remediate.api end to end against a real in-process lab over real HTTP (Basic auth, no
configuration delay): connect, read, plan with pre-flight, diff, apply with lock, backup
and audit, idempotence, undo, queues and retry; refusals; no password in what comes back."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from remediate import api
from remediate.core.errors import (
    LoginRefused,
    PreflightError,
    RemediateError,
    RemoteCommandError,
    UsageError,
)
from remediate.core.exchange import AuthMechanism, CredentialState
from remediate.lab.server import Lab
from tests.lab.lab_helpers import start_lab

pytestmark = pytest.mark.e2e

RELAY = "Outbound to Relay"


@pytest.fixture(name="lab")
def lab_fixture(tmp_path: Path) -> Iterator[Lab]:
    running = start_lab(tmp_path, config_delay=0)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(name="environ")
def environ_fixture(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}


@pytest.fixture(name="handle")
def handle_fixture(lab: Lab, environ: dict[str, str]) -> Iterator[api.Handle]:
    with api.connect(
        lab.endpoint_url,
        user=lab.admin_user,
        password=lab.admin_password,
        auth="basic",
        environ=environ,
    ) as handle:
        yield handle


def fix_relay(handle: api.Handle, lab: Lab, **extra: object) -> api.Plan:
    return api.plan(
        handle, "2016", RELAY, mechanism="BasicAuthRequireTLS", username=lab.relay_user, **extra
    )


def test_the_surface_is_versioned_and_listed() -> None:
    major, minor = (int(part) for part in api.API_VERSION.split("."))
    assert (major, minor) == (1, 2)  # 1.1 added fix, verify, ExitStatus, StepFailed, queue_json
    assert all(hasattr(api, name) for name in api.__all__)
    verbs = {"connect", "read_connectors", "plan", "diff", "apply", "undo", "queues", "retry"}
    assert verbs | {"fix", "verify", "queue_json"} <= set(api.__all__)
    assert "start_hosts" in api.__all__  # 1.2: connect(host=...) runs the shell in a worker
    assert issubclass(api.StepFailed, RemoteCommandError)  # what 1.0 promised still holds


def test_plan_apply_is_idempotent_and_undo_restores(
    handle: api.Handle, lab: Lab, environ: dict[str, str]
) -> None:
    before = api.read_connectors(handle, RELAY)[0]
    assert before.smart_host_auth_mechanism is AuthMechanism.EXCHANGE_SERVER
    waiting = api.queues(handle, RELAY)
    assert sorted(q.identity for q in waiting) == ["EX01\\4", "EX02\\12"]
    assert all(q.message_count > 0 and q.status == "Retry" for q in waiting)

    plan = fix_relay(handle, lab)
    assert plan.changes and [c.username for c in plan.credentials] == [lab.relay_user]
    rows = {name: (old, new) for name, old, new in api.diff(plan, before)}
    assert rows["SmartHostAuthMechanism"] == ("ExchangeServer", "BasicAuthRequireTLS")
    assert rows["AuthenticationCredential"] == ("not set", "set")

    outcome = api.apply(handle, plan, relay_password=lab.relay_password)
    assert outcome.changed
    assert outcome.before == before
    assert outcome.after.smart_host_auth_mechanism is AuthMechanism.BASIC_AUTH_REQUIRE_TLS
    assert outcome.after.credential is CredentialState.SET
    assert api.read_connectors(handle, RELAY)[0] == outcome.after
    assert outcome.backup is not None and outcome.backup.is_file()
    assert stat.S_IMODE(outcome.backup.stat().st_mode) == 0o600
    assert outcome.audit is not None and RELAY in outcome.audit.read_text()

    again = fix_relay(handle, lab)
    assert again.changes == ()
    assert api.diff(again, outcome.after) == []
    unchanged = api.apply(handle, again)  # no relay password needed: nothing is sent
    assert not unchanged.changed and unchanged.backup is None

    reentered = fix_relay(handle, lab, reenter_credential=True)
    assert api.diff(reentered, outcome.after) == [("AuthenticationCredential", "set", "re-entered")]

    restored = api.undo(handle, outcome.backup)
    assert restored.changed and restored.backup is not None
    after_undo = api.read_connectors(handle, RELAY)[0]
    assert after_undo.smart_host_auth_mechanism is AuthMechanism.EXCHANGE_SERVER
    assert any("credential" in note for note in restored.notes)
    assert not api.undo(handle, outcome.backup).changed  # already restored: nothing sent


def test_retry_watches_and_gives_the_verdict(handle: api.Handle, lab: Lab) -> None:
    failing = api.retry(handle, RELAY, 2)  # the failed retry settles back into Retry
    assert failing.flow is api.MailFlow.FAILS
    assert {q.identity for q in failing.queues} == {"EX01\\4", "EX02\\12"}
    assert lab.smart_host is not None
    sent_before = len(lab.smart_host.messages)
    plan = fix_relay(handle, lab)
    api.apply(handle, plan, relay_password=lab.relay_password)
    deadline = time.monotonic() + 20  # the plan's Retry-Queue: delivery runs on its own
    while any(q.message_count for q in api.queues(handle, RELAY)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(q.message_count == 0 for q in api.queues(handle, RELAY))
    assert len(lab.smart_host.messages) > sent_before  # the relay accepted the retried mail
    settled = api.retry(handle, RELAY, 2)
    assert settled.flow is api.MailFlow.UNKNOWN  # nothing was waiting, so nothing proved
    assert "no message was waiting" in settled.reason


def test_a_refused_preflight_raises_and_sends_nothing(handle: api.Handle, lab: Lab) -> None:
    before = api.read_connectors(handle, RELAY)[0]
    with pytest.raises(PreflightError) as refused:
        api.plan(handle, "2016", RELAY, mechanism="BasicAuth")  # BasicAuth without credential
    assert "\n" not in refused.value.message
    assert api.read_connectors(handle, RELAY)[0] == before


def test_bad_options_are_usage_errors(handle: api.Handle) -> None:
    with pytest.raises(UsageError, match="mechanism"):
        api.plan(handle, "2016", RELAY, mechanism="Telepathy")
    with pytest.raises(UsageError, match="--port"):
        api.plan(handle, "2002", "Outbound to Partner", port=70000)
    with pytest.raises(UsageError, match="takes no input 'fqdn'"):
        api.plan(None, "2016", RELAY, inputs={"fqdn": "mail.contoso.lab"})


def test_a_missing_relay_password_stops_before_any_change(
    handle: api.Handle, lab: Lab, environ: dict[str, str]
) -> None:
    before = api.read_connectors(handle, RELAY)[0]
    with pytest.raises(UsageError, match="relay_password"):
        api.apply(handle, fix_relay(handle, lab))
    assert api.read_connectors(handle, RELAY)[0] == before
    assert not (Path(environ["XDG_STATE_HOME"]) / "remediate" / "backups").exists()


def test_a_plan_made_before_another_change_is_refused(handle: api.Handle, lab: Lab) -> None:
    stale = fix_relay(handle, lab)
    api.apply(handle, fix_relay(handle, lab), relay_password=lab.relay_password)
    with pytest.raises(UsageError, match="changed since the plan"):
        api.apply(handle, stale, relay_password=lab.relay_password)


def test_a_refused_login_is_one_error_without_the_password(lab: Lab) -> None:
    wrong = "Wrong-canary-" + lab.admin_password[:4]
    with pytest.raises(LoginRefused) as refused:
        api.connect(lab.endpoint_url, user=lab.admin_user, password=wrong, auth="basic")
    assert wrong not in str(refused.value) and wrong not in repr(refused.value)
    assert isinstance(refused.value, RemediateError)


def test_no_password_in_any_returned_object(
    handle: api.Handle, lab: Lab, environ: dict[str, str]
) -> None:
    plan = fix_relay(handle, lab)
    current = api.read_connectors(handle, RELAY)[0]
    returned: list[object] = [
        handle,
        handle.connection,
        api.read_connectors(handle),
        plan,
        api.diff(plan, current),
        api.queues(handle, RELAY),
    ]
    outcome = api.apply(handle, plan, relay_password=lab.relay_password)
    assert outcome.backup is not None
    returned += [outcome, api.retry(handle, RELAY, 0), api.undo(handle, outcome.backup)]
    returned += handle.warnings
    text = "\n".join(repr(obj) + str(obj) for obj in returned)
    assert lab.relay_user in text  # the user name is shown, so the search is real
    for secret in (lab.admin_password, lab.relay_password):
        assert secret not in text
        for path in (Path(environ["XDG_STATE_HOME"]) / "remediate").rglob("*"):
            if path.is_file():
                assert secret not in path.read_text(errors="replace"), path


def test_a_handle_whose_shell_runs_in_a_worker_process(lab: Lab, environ: dict[str, str]) -> None:
    """1.2: connect(host=...) with a host from start_hosts: the same plan, apply and undo,
    the pypsrp pool in the worker (spawned: this process runs the lab's threads)."""
    (host,) = api.start_hosts(1)
    try:
        with api.connect(
            lab.endpoint_url,
            user=lab.admin_user,
            password=lab.admin_password,
            auth="basic",
            environ=environ,
            host=host,
        ) as handle:
            outcome = api.apply(handle, fix_relay(handle, lab), relay_password="Worker-Relay-1")
            assert outcome.changed and outcome.backup is not None
            assert api.plan(handle, "2016", RELAY, mechanism="BasicAuthRequireTLS").changes == ()
            api.undo(handle, outcome.backup, relay_user=lab.relay_user)
        connector = lab.organization.connector(RELAY)
        assert connector.smart_host_auth_mechanism == "ExchangeServer"  # undone
        assert host.start_method == "spawn"
    finally:
        host.close()
