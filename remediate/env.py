"""The process environment as one object (after httpie): streams and whether they are
terminals, so tests can pretend to be a terminal or not.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Environment:
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    stdin_isatty: bool | None = None
    stdout_isatty: bool | None = None
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    _stdin_lines: list[str] | None = field(default=None, init=False, repr=False)

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
        """All of stdin as lines, read once (``--password-stdin`` takes several secrets)."""
        if self._stdin_lines is None:
            self._stdin_lines = self.stdin.read().splitlines()
        return self._stdin_lines

    def out(self, text: str = "") -> None:
        print(text, file=self.stdout)

    def err(self, text: str) -> None:
        print(text, file=self.stderr)


def _isatty(stream: TextIO | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):
        return False
