"""`remediate fix` for an admin's own playbook (YAML only, tests/fixtures/playbooks, event
12014) in-process against a real Lab: with no flow module of its own, the wizard runs the
playbook's checks and asks its declared inputs (question text, ``when``, choices, a value its
type refuses asked again); questionary runs for real on a prompt_toolkit pipe input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from remediate.core.errors import UsageError
from remediate.lab.server import Lab
from tests.wizard.helpers import DOWN, ENTER, Run, lab_options, relay_connector

OWN = Path(__file__).resolve().parent.parent / "fixtures" / "playbooks"
NO = "n"


@pytest.fixture
def own_playbook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The 12014 playbook, with one more input asked only when an FQDN was given (the
    built-in protocol_logging: a choice), in this test's $XDG_CONFIG_HOME."""
    text = (OWN / "12014-starttls-certificate.yaml").read_text()
    text = text.replace(
        "checks:\n",
        "  - name: protocol_logging\n"
        "    type: protocol_logging\n"
        "    help: ProtocolLoggingLevel for the retry\n"
        "    question: Send protocol logging level?\n"
        "    when: fqdn\n"
        "checks:\n",
    ).replace(
        "      Fqdn: fqdn\n", "      Fqdn: fqdn\n      ProtocolLoggingLevel: protocol_logging\n"
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    directory = tmp_path / "config" / "remediate" / "playbooks"
    directory.mkdir(parents=True)
    path = directory / "12014.yaml"
    path.write_text(text)
    return path


def test_the_wizard_asks_an_own_playbooks_questions(
    lab: Lab, drive: Callable[..., Run], own_playbook: Path
) -> None:
    keys = (
        ENTER  # connector: preselected
        + "10.0.0.5" + ENTER  # fqdn: an IP address, refused and asked again
        + "mail.contoso.lab" + ENTER  # fqdn
        + DOWN + ENTER  # protocol logging (asked: an FQDN was given): Verbose
        + ENTER  # action: apply
        + NO  # after the watch: verbose logging back off? no
        + NO  # the queue still fails (the seeded 2016 fault): undo? no, keep
    )  # fmt: skip
    run = drive(lab_options(lab, playbook="12014"), keys)

    assert "Diagnosis (nothing has been changed):" in run.out, run.err
    assert "Probing smart host" not in run.out  # the 2016 playbook's check is not run
    assert "--fqdn: '10.0.0.5' is an IP address; give a domain name (try 2 of 3)." in run.out
    assert (
        "Set-SendConnector -Identity 'Outbound to Relay' -Fqdn 'mail.contoso.lab' "
        "-ProtocolLoggingLevel 'Verbose' -Confirm:$false"
    ) in run.out
    after = relay_connector(lab)
    assert after.fqdn == "mail.contoso.lab"
    assert str(after.protocol_logging_level) == "Verbose"
    assert run.status == 6, run.out + run.err  # mail still fails: the 2016 fault stays


def test_a_question_whose_when_fails_is_not_asked(
    lab: Lab, drive: Callable[..., Run], own_playbook: Path
) -> None:
    """No FQDN: the protocol logging question (``when: fqdn``) is skipped, so nothing is
    left to change and nothing is sent."""
    before = relay_connector(lab)
    with pytest.raises(UsageError, match="nothing to change: give at least one fix option"):
        drive(lab_options(lab, playbook="12014"), ENTER + ENTER)  # connector; fqdn: empty
    assert relay_connector(lab) == before
