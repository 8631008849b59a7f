"""The 2016 wizard in-process, against a real Lab, with typed keys through prompt_toolkit's
pipe input (questionary runs for real; only the keyboard is simulated)."""

from __future__ import annotations

import socket
from pathlib import Path

from remediate.core.exchange import AuthMechanism, CredentialState
from remediate.lab.server import Lab
from remediate.lab.smarthost import SmartHost
from tests.wizard.helpers import (
    CLEAR_LINE,
    CTRL_C,
    DOWN,
    ENTER,
    UP,
    lab_options,
    relay_connector,
    set_connector,
)


def _credential_keys(lab: Lab, password: str | None = None) -> str:
    """username, password source (only 'type' without a keyring), password twice."""
    secret = lab.relay_password if password is None else password
    return f"{CLEAR_LINE}{lab.relay_user}{ENTER}{ENTER}{secret}{ENTER}{secret}{ENTER}"


def test_a_mechanism_the_smart_host_lacks_is_replaced_and_both_queues_drain(
    lab: Lab, drive
) -> None:
    """The seeded 2016 (ExchangeServer to a relay that offers STARTTLS and AUTH LOGIN, queues
    on EX01 and EX02): the recommended mechanism with the relay credential fixes it."""
    keys = ENTER + ENTER + _credential_keys(lab) + ENTER  # connector, mechanism, ..., apply
    run = drive(lab_options(lab), keys)
    assert run.status == 0, run.err
    assert "[FAIL] mechanism: ExchangeServer: only for another Exchange organisation" in run.out
    assert "[FAIL] queue EX02\\12: 2 waiting" in run.out
    assert "runs from THIS machine, not from the transport server" in run.out
    assert "Mail flows: " in run.out
    assert "No usable keyring on this machine: the password is not saved." in run.out
    assert "Mail flows: EX01\\4, EX02\\12 drained." in run.out
    assert len(lab.smart_host.messages) == 5
    assert relay_connector(lab).credential is CredentialState.SET
    assert "Backup: " in run.out and "Audit log: " in run.out
    assert "Changed AuthenticationCredential: not set -> set" in run.out
    assert lab.relay_password not in run.out + run.err


def test_cancel_changes_nothing(lab: Lab, drive) -> None:
    keys = ENTER + ENTER + _credential_keys(lab) + DOWN * 3 + ENTER
    run = drive(lab_options(lab), keys)
    assert run.status == 1
    assert "Cancelled: nothing was changed." in run.out
    assert relay_connector(lab).credential is CredentialState.NOT_SET
    assert lab.smart_host.messages == []


def test_save_script_and_stop(lab: Lab, drive, tmp_path: Path) -> None:
    keys = ENTER + ENTER + _credential_keys(lab) + DOWN * 2 + ENTER + ENTER
    run = drive(lab_options(lab, script_dir=tmp_path), keys)
    assert run.status == 0, run.err
    scripts = list(tmp_path.glob("remediate-2016-*.ps1"))
    assert len(scripts) == 1
    text = scripts[0].read_text()
    assert "Set-SendConnector -Identity 'Outbound to Relay'" in text
    assert lab.relay_password not in text
    assert f"Script saved to {scripts[0]}" in run.out
    assert relay_connector(lab).credential is CredentialState.NOT_SET


def test_what_if_first_then_apply(lab: Lab, drive) -> None:
    keys = ENTER + ENTER + _credential_keys(lab) + DOWN + ENTER + "y"
    run = drive(lab_options(lab), keys)
    assert run.status == 0, run.err
    assert "What if:" in run.out
    assert run.out.count("[4/9] Set-SendConnector: ok") == 2  # -WhatIf run, then the real one
    assert "Mail flows: " in run.out
    assert relay_connector(lab).credential is CredentialState.SET


def test_ctrl_c_at_the_preview_leaves_everything_as_it_was(lab: Lab, drive) -> None:
    keys = ENTER + ENTER + _credential_keys(lab) + CTRL_C
    run = drive(lab_options(lab), keys)
    assert run.status == 130
    assert "Interrupted: nothing was changed on Exchange." in run.err
    assert relay_connector(lab).credential is CredentialState.NOT_SET


def test_wrong_relay_password_keeps_failing_and_undo_is_offered(lab: Lab, drive) -> None:
    # after the 535: retype, another mechanism, undo (taken here), keep
    keys = ENTER + ENTER + _credential_keys(lab, "not-the-password") + ENTER + DOWN * 2 + ENTER
    run = drive(lab_options(lab), keys)
    assert run.status == 6
    assert "Mail still fails: " in run.out
    assert "Meaning: the smart host refused the user name or password" in run.out
    # offered and taken: the mechanism goes back; a credential cannot be unset (a note says so)
    assert "The change was undone from the backup." in run.out
    assert relay_connector(lab).smart_host_auth_mechanism is AuthMechanism.EXCHANGE_SERVER
    assert lab.smart_host.messages == []
    assert "not-the-password" not in run.out + run.err


def test_smart_host_without_starttls_recommends_basic_auth(lab: Lab, drive) -> None:
    with SmartHost(
        ca=None, relay_user=lab.relay_user, relay_password=lab.relay_password, starttls=False
    ) as plain:
        set_connector(lab, Port=plain.port)
        keys = ENTER + ENTER + _credential_keys(lab) + ENTER  # recommended mechanism first
        run = drive(lab_options(lab), keys)
        received = plain.messages
    assert run.status == 0, run.err
    assert "[warn] STARTTLS: not offered on this port" in run.out
    assert "[FAIL] mechanism: ExchangeServer" in run.out
    connector = relay_connector(lab)
    assert connector.smart_host_auth_mechanism is AuthMechanism.BASIC_AUTH
    assert connector.credential is CredentialState.SET
    assert len(received) == 5  # EX01's 3 and EX02's 2


def test_unreachable_smart_host_asks_for_the_port(lab: Lab, drive) -> None:
    right_port = lab.smtp_address.port
    set_connector(lab, Port=_closed_port())
    keys = (
        ENTER  # connector
        + CLEAR_LINE
        + f"{right_port}{ENTER}"  # port
        + ENTER  # smart host name stays
        + UP
        + ENTER  # mechanism: BasicAuthRequireTLS, just above the current ExchangeServer
        + _credential_keys(lab)
        + ENTER  # apply
    )
    run = drive(lab_options(lab), keys)
    assert run.status == 0, run.err
    assert "[FAIL] reachability:" in run.out and "refused" in run.out
    assert relay_connector(lab).port == right_port
    assert len(lab.smart_host.messages) == 5


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_require_tls_is_turned_off_when_the_smart_host_has_no_starttls(lab: Lab, drive) -> None:
    with SmartHost(
        ca=None, relay_user=lab.relay_user, relay_password=lab.relay_password, starttls=False
    ) as plain:
        set_connector(lab, Port=plain.port, RequireTLS=True)
        keys = ENTER + ENTER + "y" + _credential_keys(lab) + ENTER
        run = drive(lab_options(lab), keys)
        received = plain.messages
    assert run.status == 0, run.err
    assert "RequireTLS" in run.out and "-RequireTLS $false" in run.out
    connector = relay_connector(lab)
    assert not connector.require_tls
    assert connector.smart_host_auth_mechanism is AuthMechanism.BASIC_AUTH
    assert len(received) == 5


def test_every_smart_host_is_probed(lab: Lab, drive) -> None:
    """Exchange fails over between smart hosts: each is probed and shown; the fix is judged
    on the first one that answers."""
    set_connector(lab, SmartHosts=["localhost", "relay-backup.invalid"])
    keys = ENTER + ENTER + _credential_keys(lab) + ENTER  # connector, mechanism, apply
    run = drive(lab_options(lab), keys)
    assert run.status == 0, run.err
    assert "Probing smart host localhost:" in run.out
    assert "Probing smart host relay-backup.invalid:" in run.out
    assert "[ok]   reachability: localhost:" in run.out
    assert "[FAIL] reachability: relay-backup.invalid:" in run.out
    assert len(lab.smart_host.messages) == 5
