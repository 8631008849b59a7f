"""Event 2002 end to end through the INSTALLED executable against the lab over real HTTP: the
seeded "Outbound to Partner" (port where nothing listens) is fixed by correcting the port, its
queue drains into the lab's smart host, and verbose protocol logging is back to None after."""

from __future__ import annotations

from pathlib import Path

import pytest

from remediate.lab.server import Lab
from tests.e2e.conftest import PARTNER, PROFILE, Cli

pytestmark = [pytest.mark.e2e, pytest.mark.keyring]


def smtp_port(lab: Lab) -> int:
    assert lab.smart_host is not None
    return lab.smart_host.port


def delivered(lab: Lab) -> int:
    assert lab.smart_host is not None
    return len(lab.smart_host.messages)


def test_apply_2002_corrects_the_port_and_the_queue_drains(profiled: Cli, relay_lab: Lab) -> None:
    before = profiled.connector(PARTNER)
    assert before["Port"] != smtp_port(relay_lab) and before["ProtocolLoggingLevel"] == "None"
    assert delivered(relay_lab) == 0

    done = profiled(
        "apply", "2002", "--profile", PROFILE, "--connector", PARTNER,
        "--port", str(smtp_port(relay_lab)), "--protocol-logging", "Verbose", "--yes",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr + done.stdout
    out = done.stdout
    assert f"-Port {smtp_port(relay_lab)}" in out
    assert "-ProtocolLoggingLevel 'Verbose'" in out
    # a change reaches the transport after a delay: logging stays on, and the script says why
    assert "-ProtocolLoggingLevel 'None'" not in out
    assert "verbose protocol logging stays on" in out
    queue_table = out.split("Queues after Retry-Queue:")[1].splitlines()
    assert queue_table[2].split()[1:3] == ["Ready", "0"], out
    assert delivered(relay_lab) == 2  # the seeded queue EX01\5 held 2 messages
    assert {m.user for m in relay_lab.smart_host.messages} == {relay_lab.relay_user}

    after = profiled.connector(PARTNER)
    assert after["Port"] == smtp_port(relay_lab)
    assert after["ProtocolLoggingLevel"] == "Verbose"
    changed = {"Port", "ProtocolLoggingLevel"}
    unchanged = {k: v for k, v in before.items() if k not in changed}
    assert {k: v for k, v in after.items() if k not in changed} == unchanged
    queue = relay_lab.organization.queues()
    (partner_queue,) = [q for q in queue if q.identity == "EX01\\5"]
    assert partner_queue.messages == [] and partner_queue.last_error == ""
    audit = [(line["cmdlet"], line["changes"], line["result"]) for line in profiled.audit_lines()]
    port = smtp_port(relay_lab)
    assert audit[0][0] == "Set-SendConnector" and audit[0][2] == "changed", audit
    assert audit[0][1]["Port"] == {"old": before["Port"], "new": port}
    assert audit[1][0] == "Set-SendConnector" and audit[1][2] == "changed"
    assert audit[1][1]["ProtocolLoggingLevel"]["new"] == "Verbose"
    assert audit[-1][0] == "Retry-Queue"


def test_fix_2002_with_an_answers_file(profiled: Cli, relay_lab: Lab, tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text(
        "event: 2002\n"
        f"connection: {PROFILE}\n"
        f"connector: {PARTNER}\n"
        f"port: {smtp_port(relay_lab)}\n"
        "verbose_logging: true\n"
        "action: apply\n",
        encoding="utf-8",
    )
    done = profiled("fix", "--answers", str(answers), "--queue-wait", "15")

    assert done.returncode == 0, done.stderr + done.stdout
    assert "[FAIL] reachability: localhost:" in done.stdout
    assert "(cause: connection-refused)" in done.stdout
    assert "-ProtocolLoggingLevel 'Verbose'" in done.stdout
    assert "Mail flows: " in done.stdout
    assert delivered(relay_lab) == 2
    after = profiled.connector(PARTNER)
    assert (after["Port"], after["ProtocolLoggingLevel"]) == (smtp_port(relay_lab), "None")
    assert relay_lab.admin_password not in done.stdout + done.stderr


def test_fix_2002_answers_file_rejects_a_bad_key(profiled: Cli, tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text("event: 2002\nverbose_logging: maybe\n", encoding="utf-8")
    done = profiled("fix", "--answers", str(answers))
    assert done.returncode == 2
    assert f"{answers}:2: 'verbose_logging' must be true or false" in done.stderr
