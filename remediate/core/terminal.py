"""The one output sanitiser: text that came from outside (event files, connector names,
LastError, smart-host replies, file names) is printed without terminal control codes.

Every line remediate prints goes through it (``Environment.out``/``err``/``write`` call
``printable_text``), so an ESC sequence, an OSC title, BEL or NUL in a connector name reaches the
terminal as ``?``, never as a command to it. ``command_word`` writes every word of the
suggested commands (``next:`` lines, "Undo: remediate undo ..." hints) for the user's shell:
PowerShell on Windows, POSIX sh elsewhere; they never hold a control character either.
"""

from __future__ import annotations

import shlex

from remediate.core.files import windows
from remediate.core.pwsh import ps_literal, unsafe_character


def printable(value: object) -> str:
    """One value for a terminal: every non-printable character (C0/C1 controls, ESC, DEL,
    newlines, line and paragraph separators, format characters) replaced by ``?``."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def printable_text(text: str) -> str:
    """Lines for a terminal: ``printable`` on each, the newlines between them kept."""
    if text.isprintable():
        return text
    return "\n".join(printable(line) for line in text.split("\n"))


def command_word(text: str) -> str:
    """The one decision how a word of a suggested command is quoted: ``powershell_word`` on
    Windows (remediate.core.files.windows), ``shell_quote`` elsewhere."""

    return powershell_word(text) if windows() else shell_quote(text)


def powershell_word(text: str) -> str:
    """A PowerShell argument for ``text``: one single-quoted literal (remediate.core.pwsh: all five
    single quotes doubled, nothing expanded), or, when ``text`` holds characters a literal
    may not (control characters, bidi controls, separators) or the sanitiser would print as
    ``?`` (format characters such as a zero-width joiner), a parenthesised concatenation of
    literals and ``[char]0x..`` for each such character: exact, and nothing raw reaches the
    terminal. Works in Windows PowerShell 5.1 (it has no backtick-u escapes)."""

    if text.isprintable() and unsafe_character(text) is None:
        return ps_literal(text)
    parts: list[str] = []
    run: list[str] = []
    for ch in text:
        if ch.isprintable() and unsafe_character(ch) is None:
            run.append(ch)
            continue
        if run:
            parts.append(ps_literal("".join(run)))
            run = []
        # [char] is one UTF-16 unit: a character beyond U+FFFF is its surrogate pair
        units = ch.encode("utf-16-be", "surrogatepass")
        parts.extend(f"[char]0x{units[i]:02X}{units[i + 1]:02X}" for i in range(0, len(units), 2))
    if run:
        parts.append(ps_literal("".join(run)))
    return "(" + "+".join(["''", *parts]) + ")"


def shell_quote(text: str) -> str:
    """A shell word for ``text``: shlex.quote, or bash's ``$'...'`` with escapes when the
    text holds characters a terminal must not receive raw (the command stays exact)."""
    if text.isprintable():
        return shlex.quote(text)
    out = []
    for ch in text:
        if ch in "\\'":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "$'" + "".join(out) + "'"
