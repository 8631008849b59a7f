"""Suggested commands quoted for the user's shell (remediate.core.terminal.command_word).

PowerShell branch (Windows): no PowerShell runs here, so each line is parsed with the
tree-sitter PowerShell grammar (structure: one command, which text each argument spans) and
the literals decoded by tests.pwsh_oracle's regular expression (it knows the five
single-quote characters the grammar does not); ``[char]0x..`` casts are read from the tree.
The platform switch (remediate.core.files.PLATFORM) is set to "win32" to reach the branch.
POSIX branch: the word is given to a real bash, which prints what it received.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import pytest
import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

from remediate.core import files
from remediate.core.terminal import command_word, powershell_word, shell_quote
from remediate.diagnose.events import EventGroup, EventRecord
from remediate.diagnose.intake import Suggestion
from tests.pwsh_oracle import decode

HOSTILE = [
    "Outbound to Relay",
    "it's",
    "a’; Stop-Service MSExchangeTransport; ’b",
    "‘‚‛’'",
    "$(Stop-Service x)",
    "`whoami`",
    "a;b|c&d",
    '"double" “curly” „low“',
    "--% stop parsing",
    "@splat",
    "''",
    "",
    "ü 中文 🙂‍🙂",
    r"C:\Users\ann\AppData\Local\remediate\backups\20261122T191500Z-中文.json",
]
CONTROL = [
    "a\x1b]0;pwned\x07b",  # an OSC title sequence
    "line1\nStop-Service MSExchangeTransport",
    "tab\there\r",
    "\u202eevil",  # bidi override
    "x\u2028y",
    "\x1b",
    "’\x1b'",
    "tag\U000e0041",  # a format character beyond U+FFFF: a surrogate pair of [char]s
]
_PARSER = Parser(Language(tree_sitter_powershell.language()))
_PUNCTUATION = {"(", ")", "+"}


def _argument_value(node: Node, line: str) -> str:
    """What PowerShell passes for one argument node: literals and [char] casts concatenated
    (left to right); any other construct (a variable, a subexpression, a bare word that
    is not a literal) fails the test."""
    out: list[str] = []
    pending = [node]
    while pending:
        current = pending.pop()
        if current.type == "verbatim_string_characters":
            out.append(decode(current.text.decode("utf-8")))
        elif current.type == "cast_expression":
            kind = current.child_by_field_name("type") or current.children[0]
            assert kind.text == b"[char]", line
            number = current.children[-1].text.decode()
            assert number.startswith("0x"), line
            out.append(chr(int(number, 16)))
        elif current.type == "decimal_integer_literal" and node.type != "cast_expression":
            assert current.parent is not None and current.parent.type == "integer_literal"
            out.append(current.text.decode())  # the event number, a plain argument
        elif current.child_count == 0:
            assert current.text.decode() in _PUNCTUATION, (current.type, current.text, line)
        else:
            pending.extend(reversed(current.children))
    text = "".join(out)
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")  # pairs joined


def parse_arguments(line: str) -> list[str]:
    """The command name and the values of its arguments, as PowerShell would pass them."""
    tree = _PARSER.parse(line.encode("utf-8"))
    assert not tree.root_node.has_error, f"tree-sitter error in {line!r}"
    commands = _find(tree.root_node, "command")
    assert len(commands) == 1, f"expected one command in {line!r}"
    command = commands[0]
    name = command.children[0]
    assert name.type == "command_name", line
    values = [name.text.decode()]
    elements = [c for c in command.children if c.type == "command_elements"]
    for child in elements[0].children if elements else []:
        if child.type == "command_argument_sep":
            continue
        if child.type in ("generic_token", "command_parameter"):
            values.append(child.text.decode())
        else:
            values.append(_argument_value(child, line))
    return values


def _find(node: Node, kind: str) -> list[Node]:
    found = [node] if node.type == kind else []
    for child in node.children:
        found.extend(_find(child, kind))
    return found


@pytest.fixture
def on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "PLATFORM", "win32")


@pytest.mark.parametrize("name", HOSTILE + CONTROL)
def test_powershell_word_is_one_exact_argument(name: str, on_windows: None) -> None:
    word = command_word(name)
    assert word == powershell_word(name)
    assert word.isprintable() and "\u202e" not in word and "\u2028" not in word
    line = f"remediate undo {word}"
    assert parse_arguments(line) == ["remediate", "undo", name]
    line = f"remediate fix 2016 --connector {word} --profile PROFILE"
    expected = ["remediate", "fix", "2016", "--connector", name, "--profile", "PROFILE"]
    assert parse_arguments(line) == expected


def test_powershell_word_doubles_all_five_single_quotes(on_windows: None) -> None:
    assert command_word("'\u2018\u2019\u201a\u201b") == (
        "'''\u2018\u2018\u2019\u2019\u201a\u201a\u201b\u201b'"
    )
    assert command_word("a\x1bb") == "(''+'a'+[char]0x001B+'b')"


def _suggestion(connector: str, user: str) -> Suggestion:
    record = EventRecord(2016, connector=connector, user=user)
    now = datetime(2026, 11, 22, tzinfo=UTC)
    group = EventGroup(record=record, count=1, first=now, last=now, sources=["paste"])
    return Suggestion(group, "2016", {"username": user})


@pytest.mark.parametrize("name", ["it’s; Stop-Service x", "a\x1b[2Jb"])
def test_diagnose_next_lines_are_powershell_on_windows(name: str, on_windows: None) -> None:
    user = "CONTOSO\\relay’s $x"
    lines = _suggestion(name, user).commands
    assert len(lines) == 3
    for line in lines:
        values = parse_arguments(line)
        assert values[values.index("--connector") + 1] == name
    assert parse_arguments(lines[1])[parse_arguments(lines[1]).index("--username") + 1] == user


@pytest.mark.parametrize("name", HOSTILE + CONTROL)
def test_posix_word_reaches_bash_exactly(name: str) -> None:
    assert files.windows() is False
    word = command_word(name)
    assert word == shell_quote(name) and word.isprintable()
    if "\x00" in name:
        return
    done = subprocess.run(
        ["bash", "-c", f"printf '%s' {word}"], capture_output=True, check=True
    )
    assert done.stdout.decode("utf-8", "surrogateescape") == name


def test_posix_next_lines_are_posix_quoted() -> None:
    lines = _suggestion("it's", "relay").commands
    assert lines[0] == "remediate fix 2016 --connector 'it'\"'\"'s'"
