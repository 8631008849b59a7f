"""The one output sanitiser: text that came from outside (event files, connector names,
LastError, smart-host replies, file names) is printed without terminal control codes.

Every line remediate prints goes through it (``Environment.out``/``err``/``write`` call
``printable_text``), so an ESC sequence, an OSC title, BEL or NUL in a connector name reaches the
terminal as ``?``, never as a command to it. ``shell_quote`` writes the suggested commands:
they never hold a control character either.
"""

from __future__ import annotations

import shlex


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
