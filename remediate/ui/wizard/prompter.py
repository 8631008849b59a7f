"""All wizard I/O goes through a ``Prompter``: questionary on a terminal, or an answers file.

Every question has a stable ``key``; the answers file (``remediate.core.answers``) maps keys to
answers, so a scripted run asks exactly the questions a person would. Passwords are never
in an answers file: in answers mode they come from stdin lines (like ``--password-stdin``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from remediate.core.env import Environment
from remediate.core.errors import UsageError
from remediate.core.terminal import printable, printable_text

MAX_PASTE_LINES = 500  # an event's text is a few dozen lines


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

    def paste(self, key: str, message: str, whole: Callable[[str], bool]) -> str:
        """A text that may span lines: the first line, and when ``whole`` says it is not an
        answer by itself, the lines after it up to an empty line."""
        ...


class QuestionaryPrompter:
    """Interactive prompts on the current prompt_toolkit app session (tests use pipe input)."""

    def select(
        self, key: str, message: str, choices: Sequence[Choice], default: str | None = None
    ) -> str:
        # lazy: questionary loads prompt_toolkit (about 60 ms); only a question needs it
        import questionary

        items = [questionary.Choice(printable(c.title), value=c.value) for c in choices]
        chosen = default if default in {c.value for c in choices} else None
        return str(questionary.select(printable_text(message), items, default=chosen).unsafe_ask())

    def text(self, key: str, message: str, default: str = "") -> str:
        # lazy: questionary loads prompt_toolkit (about 60 ms); only a question needs it
        import questionary

        return str(questionary.text(printable_text(message), default=default).unsafe_ask()).strip()

    def confirm(self, key: str, message: str, default: bool = False) -> bool:
        # lazy: questionary loads prompt_toolkit (about 60 ms); only a question needs it
        import questionary

        return bool(questionary.confirm(printable_text(message), default=default).unsafe_ask())

    def password(self, key: str, message: str) -> str:
        # lazy: questionary loads prompt_toolkit (about 60 ms); only a question needs it
        import questionary

        return str(questionary.password(printable_text(message)).unsafe_ask())

    def paste(self, key: str, message: str, whole: Callable[[str], bool]) -> str:
        """Without bracketed paste (many terminals, SSH clients, tmux without -p) each pasted
        line arrives with its own Enter: the first ends the question, the rest wait as
        typeahead, read here line by line until an empty line. A bracketed paste arrives as
        one answer holding its newlines and is whole as it is."""
        # lazy: questionary loads prompt_toolkit (about 60 ms); only a question needs it
        import questionary
        from prompt_toolkit import PromptSession

        first = str(questionary.text(printable_text(message)).unsafe_ask())
        if "\n" in first.strip() or not first.strip() or whole(first.strip()):
            return first.strip()
        lines = [first]
        session: PromptSession[str] = PromptSession()
        while len(lines) < MAX_PASTE_LINES:
            line = session.prompt("  ")
            if not line.strip():
                break
            lines.append(line)
        return "\n".join(lines)


class AnswersPrompter:
    """Answers from a validated mapping (see ``remediate.core.answers``); an unanswered question
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

    def paste(self, key: str, message: str, whole: Callable[[str], bool]) -> str:
        return self.text(key, message)

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
