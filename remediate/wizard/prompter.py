"""All wizard I/O goes through a ``Prompter``: questionary on a terminal, or an answers file.

Every question has a stable ``key``; the answers file (``remediate.answers``) maps keys to
answers, so a scripted run asks exactly the questions a person would. Passwords are never
in an answers file: in answers mode they come from stdin lines (like ``--password-stdin``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from remediate.env import Environment
from remediate.errors import UsageError
from remediate.terminal import printable, printable_text


@dataclass(frozen=True)
class Choice:
    value: str
    title: str


class Prompter(Protocol):
    """What the wizard may ask. Ctrl-C raises KeyboardInterrupt (never returns None)."""

    def select(
        self, key: str, message: str, choices: Sequence[Choice], default: str | None = None
    ) -> str: ...

    def text(self, key: str, message: str, default: str = "") -> str: ...

    def confirm(self, key: str, message: str, default: bool = False) -> bool: ...

    def password(self, key: str, message: str) -> str: ...


class QuestionaryPrompter:
    """Interactive prompts on the current prompt_toolkit app session (tests use pipe input)."""

    def select(
        self, key: str, message: str, choices: Sequence[Choice], default: str | None = None
    ) -> str:
        import questionary

        items = [questionary.Choice(printable(c.title), value=c.value) for c in choices]
        chosen = default if default in {c.value for c in choices} else None
        return str(questionary.select(printable_text(message), items, default=chosen).unsafe_ask())

    def text(self, key: str, message: str, default: str = "") -> str:
        import questionary

        return str(questionary.text(printable_text(message), default=default).unsafe_ask()).strip()

    def confirm(self, key: str, message: str, default: bool = False) -> bool:
        import questionary

        return bool(questionary.confirm(printable_text(message), default=default).unsafe_ask())

    def password(self, key: str, message: str) -> str:
        import questionary

        return str(questionary.password(printable_text(message)).unsafe_ask())


class AnswersPrompter:
    """Answers from a validated mapping (see ``remediate.answers``); an unanswered question
    takes its default or fails naming the key, so a scripted run never hangs."""

    def __init__(self, answers: Mapping[str, Any], env: Environment, source: str) -> None:
        self._answers = answers
        self._env = env
        self._source = source
        self._stdin_line = 0

    def _get(self, key: str, message: str, default: Any) -> Any:
        if key in self._answers:
            return self._answers[key]
        if default is not None:
            return default
        raise UsageError(
            f"{self._source}: no answer for '{key}' ({message.rstrip(':? ')})",
            hint=f"add a line '{key}: ...' to the answers file",
        )

    def select(
        self, key: str, message: str, choices: Sequence[Choice], default: str | None = None
    ) -> str:
        answer = str(self._get(key, message, default))
        for choice in choices:
            if answer.lower() in (choice.value.lower(), choice.title.lower()):
                return choice.value
        allowed = ", ".join(c.value for c in choices)
        raise UsageError(f"{self._source}: '{key}': {answer!r} is not one of: {allowed}")

    def text(self, key: str, message: str, default: str = "") -> str:
        return str(self._get(key, message, default)).strip()

    def confirm(self, key: str, message: str, default: bool = False) -> bool:
        answer = self._get(key, message, default)
        if isinstance(answer, bool):
            return answer
        raise UsageError(f"{self._source}: '{key}' must be true or false, not {answer!r}")

    def password(self, key: str, message: str) -> str:
        lines = self._env.stdin_lines()
        if self._stdin_line >= len(lines):
            raise UsageError(
                f"{message.rstrip(':? ')}: no password on stdin (line {self._stdin_line + 1})",
                hint="with --answers, passwords are read from stdin, one per line, never "
                "from the answers file",
            )
        value = lines[self._stdin_line]
        self._stdin_line += 1
        return value
