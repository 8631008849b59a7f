"""Intake: pasted event text prefills the wizard; a new connection is created and saved as a
profile (answers prompter in-process, with the admin and relay passwords on stdin)."""

from __future__ import annotations

import io
from pathlib import Path

from remediate.core.env import Environment
from remediate.core.exchange import CredentialState
from remediate.lab.seed import RELAY
from remediate.lab.server import Lab
from remediate.lab.transport import event_2016
from remediate.remote.connections import ProfileStore
from remediate.ui.wizard.flow import WizardOptions, run_wizard
from remediate.ui.wizard.prompter import AnswersPrompter
from tests.wizard.helpers import CLEAR_LINE, ENTER, lab_options, relay_connector

EVENT = event_2016(
    "UnknownCredentials", RELAY, "BasicAuthRequireTLS", "SMTPSVC/localhost", "EX01$"
).message


def test_pasted_event_text_preselects_the_connector_and_explains(lab: Lab, drive) -> None:
    secret = lab.relay_password
    keys = (
        EVENT.replace("\n", " ")
        + ENTER  # the pasted message
        + ENTER  # connector: preselected from the event
        + ENTER  # mechanism: recommended
        + f"{CLEAR_LINE}{lab.relay_user}{ENTER}{ENTER}{secret}{ENTER}{secret}{ENTER}"
        + ENTER  # apply
    )
    run = drive(lab_options(lab, playbook=None, connector=None), keys)
    assert run.status == 0, run.err
    assert f"Event 2016 for Send connector '{RELAY}'." in run.out
    assert "the transport's own identity: it holds no credential" in run.out
    assert "[warn] event:" in run.out
    assert len(lab.smart_host.messages) == 5  # EX01 and EX02


def test_new_connection_is_saved_as_a_profile_and_used(
    lab: Lab, tmp_path: Path, no_keyring
) -> None:
    environ = {
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "HOME": str(tmp_path),
    }
    answers = {
        "connection": "(new connection)",
        "server": lab.endpoint_url,
        "auth": "basic",
        "user": lab.admin_user,
        "save_profile": True,
        "profile_name": "lab",
        "connector": RELAY,
        "username": lab.relay_user,
        "password_source": "type",
        "action": "apply",
    }
    stdin = f"{lab.admin_password}\n{lab.relay_password}\n{lab.relay_password}\n"
    out, err = io.StringIO(), io.StringIO()
    env = Environment(
        stdin=io.StringIO(stdin),
        stdout=out,
        stderr=err,
        stdin_isatty=False,
        stdout_isatty=False,
        environ=environ,
    )
    options = WizardOptions(playbook="2016", probe_ca_file=lab.ca_file, queue_wait=10)
    status = run_wizard(env, AnswersPrompter(answers, env, "answers"), options)
    assert status == 0, err.getvalue()
    saved = ProfileStore(environ=environ).get("lab")
    assert saved.url == lab.endpoint_url and saved.username == lab.admin_user
    assert relay_connector(lab).credential is CredentialState.SET
    assert lab.admin_password not in out.getvalue() + err.getvalue()
    assert lab.relay_password not in out.getvalue() + err.getvalue()


def test_a_wevtutil_export_as_event_text_prefills_too(lab: Lab, drive) -> None:
    """--event-file may hold the XML export (wevtutil /f:xml) rather than copied text."""
    export = (
        "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
        "<Provider Name='MSExchangeTransport'/><EventID Qualifiers='49156'>2016</EventID>"
        "<TimeCreated SystemTime='2026-11-22T17:01:02.0Z'/><Computer>EX01.contoso.lab</Computer>"
        f"</System><EventData><Data>UnknownCredentials</Data><Data>{RELAY}</Data>"
        "<Data>Login</Data><Data>SMTPSVC/localhost</Data><Data>EX01$</Data></EventData></Event>"
    )
    secret = lab.relay_password
    keys = (
        ENTER  # connector: preselected from the event
        + ENTER  # mechanism: recommended
        + f"{CLEAR_LINE}{lab.relay_user}{ENTER}{ENTER}{secret}{ENTER}{secret}{ENTER}"
        + ENTER  # apply
    )
    run = drive(lab_options(lab, playbook=None, connector=None, event_text=export), keys)
    assert run.status == 0, run.err
    assert f"Event 2016 for Send connector '{RELAY}'." in run.out
    assert len(lab.smart_host.messages) == 5  # EX01 and EX02
