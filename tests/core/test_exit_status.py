"""ExitStatus is the one list of exit statuses: the README's tables are checked against it,
every error class takes its status from it, and a run's Outcome maps its steps and its
queue verdict onto it the way the README says."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
from pathlib import Path

import remediate
from remediate.core.errors import RemediateError
from remediate.core.status import ExitStatus
from remediate.run.execute import execute
from remediate.run.pipeline import Outcome
from remediate.run.queue_watch import MailFlow, QueueVerdict
from tests.executor_fakes import BROKEN, FakeSession, relay_plan

README = Path(__file__).resolve().parents[2] / "README.md"


def _rows(table: str) -> list[list[str]]:
    lines = [line for line in table.strip().splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines[2:]]


def test_the_readme_table_is_the_enum() -> None:
    block = README.read_text(encoding="utf-8").split("<!-- exit-status -->")[1]
    table = block.split("<!-- /exit-status -->")[0]
    assert _rows(table) == [[str(int(s)), f"`{s.name}`", s.meaning] for s in ExitStatus]


def test_the_per_command_tables_name_only_listed_statuses() -> None:
    text = README.read_text(encoding="utf-8")
    table = text.split("### Exit status of apply and undo")[1].split("\n## ")[0]
    listed = {int(cell) for row in _rows(table) for cell in re.findall(r"\d+", row[0])}
    signals = {143, 129}  # 128 + SIGTERM / SIGHUP: ExitStatus.INTERRUPTED after a signal
    assert listed - signals <= {int(s) for s in ExitStatus}
    assert {int(ExitStatus.FAILED), int(ExitStatus.NOT_KNOWN)} <= listed


def _error_classes() -> set[type[RemediateError]]:
    for module in pkgutil.walk_packages(remediate.__path__, "remediate."):
        if not module.name.endswith("__main__"):  # that one runs the command
            importlib.import_module(module.name)
    found: set[type[RemediateError]] = set()
    pending: list[type[RemediateError]] = [RemediateError]
    while pending:
        cls = pending.pop()
        found.add(cls)
        pending += cls.__subclasses__()
    return found


def test_every_error_class_exits_with_a_listed_status() -> None:
    classes = _error_classes()
    assert len(classes) > 10  # the walk reached the modules that declare errors
    for cls in classes:
        assert isinstance(cls.exit_code, ExitStatus), cls


def _verdict(flow: MailFlow) -> QueueVerdict:
    return QueueVerdict(flow, (), "the test's")


def test_an_outcome_exits_with_its_verdict_unless_a_step_failed() -> None:
    plan = relay_plan()
    ran = execute(FakeSession(), plan, lambda _ref: "pw")
    done = Outcome(plan, BROKEN, BROKEN, ran)
    assert done.exit_status is ExitStatus.SUCCESS  # queues not watched: the steps alone
    statuses = {
        flow: Outcome(plan, BROKEN, BROKEN, ran, verdict=_verdict(flow)).exit_status
        for flow in MailFlow
    }
    assert statuses == {
        MailFlow.FLOWS: ExitStatus.SUCCESS,
        MailFlow.FAILS: ExitStatus.FAILED,
        MailFlow.UNKNOWN: ExitStatus.NOT_KNOWN,
    }
    failed = execute(FakeSession(fail_at=3), plan, lambda _ref: "pw")
    broken = Outcome(plan, BROKEN, BROKEN, failed, verdict=_verdict(MailFlow.FLOWS))
    assert broken.exit_status is ExitStatus.FAILED
    nothing = Outcome.nothing_to_change(dataclasses.replace(plan, steps=()), BROKEN)
    assert nothing.exit_status is ExitStatus.SUCCESS and nothing.summary == "Nothing to change."
