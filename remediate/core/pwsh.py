"""PowerShell literals and parameter text for the dry-run script (no Jinja here).

Every value goes into the script as a single-quoted literal. PowerShell treats five characters
as a single quote (' U+2018 U+2019 U+201A U+201B); inside a literal each of them is escaped by
doubling it, so nothing in a value can end the literal early.

Refused outright (``UnsafeValueError``): control characters (category Cc: newlines, tabs, NUL,
ESC...), the line and paragraph separators U+2028/U+2029, lone surrogates, and the Unicode
bidirectional controls (U+061C, U+200E/F, U+202A-U+202E, U+2066-U+2069). The bidi controls are
harmless to PowerShell inside a literal, but they make a script read differently on screen
from what it does ("Trojan Source"), and the script exists to be reviewed. Other format
characters (zero-width joiner in an emoji, soft hyphen) are kept.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from enum import Enum

from remediate.core.errors import UnsafeValueError
from remediate.core.plan import CredentialRef, Parameter, ParamValue, Switch

SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"

_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_SEPARATORS = frozenset("\u2028\u2029")
_ASCII_CONTROL = re.compile("[\x00-\x1f\x7f]")  # unicodedata's Cc within ASCII

# Parameters of type SwitchParameter: a value must be attached with a colon (-Confirm:$false).
_SWITCH_PARAMETERS = frozenset({"confirm", "whatif", "force", "verbose", "debug"})


def unsafe_character(text: str) -> str | None:
    """The first character that may not appear in a literal, or None."""
    if text.isascii():  # the common case, in C: ASCII's only unsafe characters are Cc
        found = _ASCII_CONTROL.search(text)
        return found.group() if found else None
    for ch in text:
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs") or ch in _SEPARATORS or ch in _BIDI_CONTROLS:
            return ch
    return None


def check_safe(text: str, what: str = "value") -> str:
    """Return ``text`` unchanged, or raise UnsafeValueError naming ``what`` and the character."""
    bad = unsafe_character(text)
    if bad is not None:
        raise UnsafeValueError(
            f"{what} contains the control character U+{ord(bad):04X}, "
            "which cannot be written safely into a PowerShell command",
            hint="remove line breaks, tabs and other invisible control characters",
        )
    return text


def ps_comment(text: object) -> str:
    """Text for a ``#`` comment line: refused if it could start a new line of code."""
    return check_safe(str(text), "comment text")


def ps_literal(text: str, what: str = "value") -> str:
    """``text`` as one single-quoted PowerShell literal."""
    check_safe(text, what)
    escaped = "".join(ch * 2 if ch in SINGLE_QUOTES else ch for ch in text)
    return f"'{escaped}'"


def ps_value(value: ParamValue, credentials: Mapping[CredentialRef, str] | None = None) -> str:
    """A parameter value as PowerShell text.

    Booleans are ``$true``/``$false``, integers digits, enums and strings literals, tuples
    comma-separated literals (``$null`` when empty), a credential reference the variable that
    holds it (``credentials`` maps each reference to its variable name, ``$cred``).
    """
    if value is None:
        return "$null"
    if isinstance(value, bool):
        return "$true" if value else "$false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, CredentialRef):
        if not credentials or value not in credentials:
            raise ValueError(f"no variable declared for the credential of {value.username!r}")
        return credentials[value]
    if isinstance(value, Switch):
        raise ValueError("a switch has no value; render it with ps_parameter")
    if isinstance(value, Enum):
        return ps_literal(str(value.value))
    if isinstance(value, tuple):
        if not value:
            return "$null"
        return ",".join(ps_literal(str(item)) for item in value)
    if isinstance(value, str):
        return ps_literal(value)
    raise TypeError(f"cannot write a {type(value).__name__} as a PowerShell value")


def ps_parameter(
    parameter: Parameter, credentials: Mapping[CredentialRef, str] | None = None
) -> str:
    """``-Name value``; a switch as ``-Name``; a switch with a value as ``-Name:$false``."""
    name = parameter.name
    if not name.isascii() or not name.replace("_", "").isalnum():
        raise ValueError(f"not a PowerShell parameter name: {name!r}")
    if isinstance(parameter.value, Switch):
        return f"-{name}"
    if name.lower() in _SWITCH_PARAMETERS:
        return f"-{name}:{ps_value(parameter.value, credentials)}"
    return f"-{name} {ps_value(parameter.value, credentials)}"


def credential_variables(credentials: tuple[CredentialRef, ...]) -> dict[CredentialRef, str]:
    """``$cred`` for the first distinct credential, then ``$cred2``, ``$cred3``..."""
    return {ref: "$cred" if i == 0 else f"$cred{i + 1}" for i, ref in enumerate(credentials)}
