"""Every RemediateError survives pickling with its type, message, hint and own attributes:
a shell's errors cross from its worker process (``remote.hosting``) to the one that prints
them, so one that lost its hint, its flag or its class would reach the admin changed.

The classes are found by importing every module of the package and walking the subclasses
of RemediateError; each has a way to be built below, so a new one without it fails here.
"""

from __future__ import annotations

import importlib
import pickle
import pkgutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import remediate
from remediate.bulk.spec import Problem, SpecError
from remediate.core.answers import AnswersError
from remediate.core.errors import (
    ConnectionFailed,
    Interrupted,
    LoginRefused,
    NotInteractiveError,
    OptionError,
    PlaybookError,
    PreflightError,
    RemediateError,
    RemoteCommandError,
    RunRecap,
    SecretStoreError,
    TemplateError,
    UnsafeValueError,
    UsageError,
)
from remediate.core.exchange import SendConnector
from remediate.core.options import FixOptions
from remediate.core.planner import build_plan
from remediate.core.playbooks import find
from remediate.lab.model import StateFileError
from remediate.remote.errors import RemoteError
from remediate.remote.shell import StepResult
from remediate.run.execute import ExecutionInterrupted, ExecutionResult
from remediate.run.locks import ConnectorBusy
from remediate.run.pipeline import Outcome, StepFailed

NAME = "Outbound to Relay"
HINT = "check the smart host"


def _subclasses(cls: type[RemediateError]) -> Iterator[type[RemediateError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _every_error_class() -> set[type[RemediateError]]:
    for module in pkgutil.walk_packages(remediate.__path__, "remediate."):
        if not module.name.endswith("__main__"):  # that one runs the command
            importlib.import_module(module.name)
    found: set[type[RemediateError]] = {RemediateError, *_subclasses(RemediateError)}
    return {cls for cls in found if cls.__module__.startswith("remediate.")}


def _refused_run() -> tuple[Outcome, ExecutionResult]:
    """A port change Exchange refused (its error record), and the run cut short after it."""
    before = SendConnector(name=NAME, guid="6f1c0c1e-0000-4000-8000-000000000001")
    plan = build_plan(find("2016"), FixOptions(connector=NAME, port=2525), current=before)
    change = next(s for s in plan.steps if s.is_change)
    error = RemoteError(
        "InvalidArgument",
        "[Server=EX01] 8F1A2B3C,Microsoft.Exchange.Management.SystemConfigurationTasks",
        "The port is in use by another connector.",
        NAME,
        "Microsoft.Exchange.Data.DataValidationException",
    )
    result = ExecutionResult(plan, [StepResult(change, False, [], [error], [], [])])
    return Outcome(plan, before, before, result), result


def _step_failed() -> StepFailed:
    outcome, _ = _refused_run()
    return StepFailed(outcome)


def _execution_interrupted() -> ExecutionInterrupted:
    _, result = _refused_run()
    result.interrupted = result.results[0].step
    result.stopped_by = "Ctrl-C"
    return ExecutionInterrupted(result)


def _plain(cls: type[RemediateError]) -> Callable[[], RemediateError]:
    return lambda: cls("the endpoint said no", hint=HINT)


# how to build each one, as the code that raises it does
BUILD: dict[type[RemediateError], Callable[[], RemediateError]] = {
    RemediateError: lambda: RemediateError(
        "cut short", hint=HINT, recap=RunRecap("[1/2] Set-SendConnector: ok", Path("/b.json"))
    ),
    **{
        cls: _plain(cls)
        for cls in (
            UsageError,
            PlaybookError,
            TemplateError,
            UnsafeValueError,
            NotInteractiveError,
            SecretStoreError,
            ConnectionFailed,
            LoginRefused,
            RemoteCommandError,
            Interrupted,
            StateFileError,
            ConnectorBusy,
        )
    },
    OptionError: lambda: OptionError("--port", "70000 is not a port number", hint=HINT),
    PreflightError: lambda: PreflightError(
        "RequireTlsWithIgnoreStartTls", "RequireTLS", "IgnoreSTARTTLS is set", hint=HINT
    ),
    SpecError: lambda: SpecError(Path("rotate.yaml"), [Problem(3, "port: not a number")]),
    AnswersError: lambda: AnswersError(
        Path("answers.yaml"), ["answers.yaml:2: unknown key", "answers.yaml:5: bad"], [HINT]
    ),
    StepFailed: _step_failed,
    ExecutionInterrupted: _execution_interrupted,
}


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, RunRecap):  # a slotted class without __eq__ (nothing compares one)
        return isinstance(right, RunRecap) and (left.summary, left.backup) == (
            right.summary,
            right.backup,
        )
    return bool(left == right)


def test_every_error_class_has_a_way_to_be_built_here() -> None:
    found = _every_error_class()
    assert found - set(BUILD) == set(), "a new RemediateError: add it to BUILD"
    assert set(BUILD) - found == set()


@pytest.mark.parametrize("cls", list(BUILD), ids=lambda cls: cls.__name__)
def test_the_error_survives_pickling(cls: type[RemediateError]) -> None:
    error = BUILD[cls]()
    assert type(error) is cls
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes, just made
    assert type(copy) is cls
    assert (copy.message, str(copy), copy.hint, copy.args) == (
        error.message,
        str(error),
        error.hint,
        error.args,
    )
    assert copy.exit_code == error.exit_code
    assert error.message  # built with a message, not an empty one
    assert set(vars(copy)) == set(vars(error))
    for name, value in vars(error).items():  # flag, problem, rule, parameter, outcome, ...
        assert _same(getattr(copy, name), value), name


def test_declared_attributes_come_back() -> None:
    """The attributes other code reads instead of parsing the message (bulk names a row's
    key by ``flag``; the wizard names the rule)."""
    option = pickle.loads(pickle.dumps(BUILD[OptionError]()))  # noqa: S301 - our own bytes
    assert (option.flag, option.problem, option.hint) == (
        "--port",
        "70000 is not a port number",
        HINT,
    )
    rule = pickle.loads(pickle.dumps(BUILD[PreflightError]()))  # noqa: S301 - our own bytes
    assert (rule.rule, rule.parameter) == ("RequireTlsWithIgnoreStartTls", "RequireTLS")
    spec = pickle.loads(pickle.dumps(BUILD[SpecError]()))  # noqa: S301 - our own bytes
    assert spec.lines() == ["rotate.yaml:3: port: not a number"]
    failed = pickle.loads(pickle.dumps(_step_failed()))  # noqa: S301 - our own bytes
    assert "The port is in use by another connector." in failed.message
    assert failed.recap is not None and failed.recap.summary == failed.outcome.summary
