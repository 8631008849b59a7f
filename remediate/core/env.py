"""The process environment as one object (after httpie): streams and whether they are
terminals, so tests can pretend to be a terminal or not.

Everything printed goes through ``out``/``err``/``write``: one sanitiser
(``remediate.core.terminal``)
for text from outside, and a closed stdout (``| head``) ends stdout output quietly while the
run goes on recording what it must (``report`` then falls back to stderr).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TextIO

from remediate.core.errors import UsageError
from remediate.core.terminal import printable_text


@dataclass
class Environment:
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin_isatty: bool | None = None
    stdout_isatty: bool | None = None
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    _stdin_lines: list[str] | None = field(default=None, init=False, repr=False)
    stdout_closed: bool = field(default=False, init=False)
    json_sent: bool = field(default=False, init=False)  # a --json document went to stdout

    def __post_init__(self) -> None:
        if self.stdin_isatty is None:
            self.stdin_isatty = _isatty(self.stdin)
        if self.stdout_isatty is None:
            self.stdout_isatty = _isatty(self.stdout)

    @property
    def interactive(self) -> bool:
        """True when a person can answer prompts."""
        return bool(self.stdin_isatty and self.stdout_isatty)

    def stdin_lines(self) -> list[str]:
        """All of stdin as lines, read once (``--password-stdin`` takes several secrets).

        Lines end at ``\n`` only (an ``\r`` before it is dropped): never at U+2028, U+0085 or
        a form feed as ``str.splitlines`` would, which would hand on half a password. A line
        holding any other control or separator character is refused before anything is sent.
        """
        if self._stdin_lines is None:
            self._stdin_lines = secret_lines(self.stdin.read())
        return self._stdin_lines

    def out(self, text: str = "") -> None:
        self.write(f"{text}\n")

    def write(self, text: str) -> None:
        """``text`` on stdout, sanitised; nothing once stdout has been closed."""
        if self.stdout_closed:
            return
        try:
            self.stdout.write(printable_text(text))
            self.stdout.flush()
        except BrokenPipeError:
            self._stdout_gone()

    def write_clean(self, text: str) -> None:
        """``text`` on stdout as is: only for ``remediate.core.output``, which sanitised it and
        added nothing but its own colour codes."""
        if self.stdout_closed:
            return
        try:
            self.stdout.write(text)
            self.stdout.flush()
        except BrokenPipeError:
            self._stdout_gone()

    def err(self, text: str) -> None:
        self.write_err(f"{text}\n")

    def write_err(self, text: str) -> None:
        try:
            self.stderr.write(printable_text(text))
            self.stderr.flush()
        except (BrokenPipeError, ValueError):
            pass

    def report(self, text: str = "") -> None:
        """A line of the recap of what was changed: stdout, or stderr once stdout is gone."""
        if self.stdout_closed:
            self.err(text)
        else:
            self.out(text)

    def _stdout_gone(self) -> None:
        """The reader went away: write no more to stdout, and point its descriptor at
        /dev/null so the interpreter's last flush does not print a traceback."""
        self.stdout_closed = True
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self.stdout.fileno())
            os.close(null)
        except (AttributeError, OSError, ValueError):
            pass


def secret_lines(text: str) -> list[str]:
    """Lines of piped secrets: split at ``\n`` (optional ``\r`` before it); refused with the
    line number when a line holds a control or separator character (never the text)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [line.removesuffix("\r") for line in lines]
    for number, line in enumerate(lines, start=1):
        bad = next((ch for ch in line if _control(ch)), None)
        if bad is not None:
            raise UsageError(
                f"stdin line {number} holds the control or separator character "
                f"U+{ord(bad):04X}; nothing was sent",
                hint="a password may not contain control characters, line or paragraph "
                "separators; pipe one password a line, each ended by a newline",
            )
    return lines


def _control(ch: str) -> bool:
    """C0/C1 controls (tab, form feed, NEL U+0085 included) and the line/paragraph
    separators U+2028/U+2029."""
    return ch < " " or "\x7f" <= ch <= "\x9f" or ch in "\u2028\u2029"


def _isatty(stream: TextIO | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False
