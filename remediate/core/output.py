"""The one output module for what the sanitiser (``remediate.core.terminal``) cannot do alone:
colour for the checklist's ``[FAIL]``/``[ok]`` tags, widths in terminal cells, and wrapping
long lines to the terminal's width.

Colour composes with the sanitiser: a line is made printable first, then the tag (text this
module chose, never text from outside) is wrapped in an SGR sequence. It is off when
``NO_COLOR`` is set (https://no-color.org), ``TERM`` is ``dumb``, or stdout is not a terminal.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from wcwidth import wcswidth, wcwidth

from remediate.core.env import Environment
from remediate.core.terminal import printable, printable_text

RED, GREEN, RESET = "\x1b[31m", "\x1b[32m", "\x1b[0m"
TAGS = (("[FAIL]", RED), ("[ok]", GREEN))
DEFAULT_WIDTH = 100


def colour_on(env: Environment) -> bool:
    if "NO_COLOR" in env.environ or env.environ.get("TERM") == "dumb":
        return False
    return bool(env.stdout_isatty)


def status_line(env: Environment, text: str) -> None:
    """One checklist line (``  [FAIL] ...``) on stdout, its tag coloured when colour is on."""
    line = printable_text(text)
    if colour_on(env):
        body = line.lstrip(" ")
        indent = line[: len(line) - len(body)]
        for tag, colour in TAGS:
            if body.startswith(tag):
                line = f"{indent}{colour}{tag}{RESET}{body[len(tag) :]}"
                break
    env.write_clean(line + "\n")


def cells(text: str) -> int:
    """Width of printable ``text`` in terminal cells (East Asian wide characters take two)."""
    width = wcswidth(text)
    return width if width >= 0 else len(text)


def ljust_cells(text: str, width: int) -> str:
    return text + " " * max(0, width - cells(text))


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to the widest cell, counted in terminal cells; every cell sanitised."""
    lines = [[printable(cell) for cell in row] for row in [header, *rows]]
    widths = [max(cells(r[i]) for r in lines) for i in range(len(header))]
    return [
        "  ".join(ljust_cells(cell, w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in lines
    ]


def terminal_width(env: Environment) -> int:
    """``COLUMNS`` when set, else the terminal's width, else DEFAULT_WIDTH."""
    given = env.environ.get("COLUMNS", "")
    if given.isdigit() and int(given) > 20:
        return int(given)
    try:
        return os.get_terminal_size(env.stdout.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return DEFAULT_WIDTH


def wrap(text: str, width: int, indent: str = "", follow: str = "    ") -> list[str]:
    """``text`` (sanitised) broken into lines of at most ``width`` cells: at spaces when it
    can, inside a long word when it must. Linear in the length of ``text``."""
    out: list[str] = []
    line, used = indent, cells(indent)
    for word in printable(text).split(" "):
        size = cells(word)
        if used + size + (line.strip() != "") > width and line.strip():
            out.append(line)
            line, used = follow, cells(follow)
        if line.strip():
            line, used = line + " ", used + 1
        for ch in word:  # a word longer than the line is cut where the line ends
            w = max(wcwidth(ch), 0)
            if used + w > width and line.strip():
                out.append(line)
                line, used = follow, cells(follow)
            line, used = line + ch, used + w
    out.append(line)
    return out
