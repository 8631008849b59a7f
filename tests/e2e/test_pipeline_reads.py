"""The apply pipeline sends no read twice (issue 15: apply repeated its reads): against the
real lab over HTTP, `remediate apply` sends exactly the plan's steps, each once, and nothing
else; the read under the lock stands for the plan's first Get-SendConnector, the plan's own
read-back for the re-read, and its Get-Queue after Retry-Queue for the watch's first look.

The pipelines are counted by wrapping ``Session.run`` (it still sends every step to the lab:
a counter, not a mock); the lab's own request counter shows the HTTP round trips went down."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from remediate.core.env import Environment
from remediate.lab.server import Lab
from remediate.remote.session import Session
from remediate.ui.cli import main
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


def _apply(lab: Lab, tmp_path: Path, *extra: str) -> tuple[int, dict[str, object], Environment]:
    environ = {
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    env = Environment(
        stdin=io.StringIO(f"{lab.admin_password}\n{lab.relay_password}\n"),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        environ=environ,
    )
    argv = [
        "apply", "2016", "--server", lab.endpoint_url, "--auth", "basic",
        "--user", lab.admin_user, "--password-stdin", "--connector", RELAY,
        "--mechanism", "BasicAuthRequireTLS", "--username", lab.relay_user, "--yes",
        "--json", *extra,
    ]  # fmt: skip
    status = main(argv, env)
    assert isinstance(env.stdout, io.StringIO)
    return status, json.loads(env.stdout.getvalue()), env


@pytest.fixture(name="sent")
def sent_fixture(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    sent: list[str] = []
    real = Session.run

    def counted(self: Session, step: object, *args: object, **kwargs: object) -> object:
        sent.append(step.cmdlet)  # type: ignore[attr-defined]
        return real(self, step, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Session, "run", counted)
    return sent


def test_apply_sends_each_step_of_the_plan_once_and_no_other_read(
    lab: Lab, tmp_path: Path, sent: list[str]
) -> None:
    before = lab.requests_seen
    status, document, _ = _apply(lab, tmp_path, "--queue-wait", "0")
    assert status == 0 and document["result"] == "applied"
    plan = [step["cmdlet"] for step in document["plan"]["steps"]]  # type: ignore[index]
    assert plan.count("Get-SendConnector") == 2  # the read, and the read-back after the change
    assert sent == plan  # the lock's read is the plan's first step: nothing sent twice
    assert document["queues"] is None  # --queue-wait 0: not watched
    assert lab.requests_seen - before < 31  # 31 round trips before the pipeline shared reads


def test_the_queue_watch_starts_from_the_plans_own_read(
    lab: Lab, tmp_path: Path, sent: list[str]
) -> None:
    status, document, _ = _apply(lab, tmp_path, "--queue-wait", "10")
    plan = [step["cmdlet"] for step in document["plan"]["steps"]]  # type: ignore[index]
    assert sent[: len(plan)] == plan
    watched = sent[len(plan) :]
    assert set(watched) <= {"Get-Queue", "Retry-Queue"}  # no Get-SendConnector re-read
    queues = document["queues"]
    assert isinstance(queues, dict)
    assert (status, queues["flow"]) == (0, "flows")
