"""Independent checks of rendered PowerShell, for the tests.

Two oracles that share no code with remediate.core.pwsh:
- the tree-sitter PowerShell grammar (structure: one command, its parameters, and which
  text each argument spans), which does not know the curly single quotes; and
- a regular expression that knows all five single-quote characters, with its own decoder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

QUOTES = "'\u2018\u2019\u201a\u201b"
_Q = f"[{QUOTES}]"
LITERAL = f"{_Q}(?:[^{QUOTES}]|{_Q}{{2}})*{_Q}"
_VALUE = rf"(?:{LITERAL}(?:,{LITERAL})*|\$(?:true|false|null|cred\d*)|\d+)"
_PARAM = rf"-[A-Za-z]+(?:(?: |:){_VALUE})?"
COMMAND_LINE = re.compile(rf"[A-Z][A-Za-z]*-[A-Za-z]+(?: {_PARAM})*")
CRED_LINE = re.compile(rf"\$cred\d* = Get-Credential -UserName ({LITERAL}) -Message ({LITERAL})")

_PARSER = Parser(Language(tree_sitter_powershell.language()))
_ALLOWED_VARIABLES = re.compile(r"\$(?:true|false|null|cred\d*)")


def decode(literal: str) -> str:
    """The value of one single-quoted literal, the way PowerShell reads it."""
    assert re.fullmatch(LITERAL, literal), literal
    return re.sub(f"({_Q}){_Q}", r"\1", literal[1:-1])


@dataclass
class Parsed:
    cmdlet: str
    parameters: list[tuple[str, list[str]]]  # name, argument texts (one per list element)
    colon: set[str]


def parse_command(line: str) -> Parsed:
    """Parse one command line with tree-sitter; fail on anything but a plain command."""
    tree = _PARSER.parse(line.encode("utf-8"))
    root = tree.root_node
    assert not root.has_error, f"tree-sitter error in {line!r}"
    commands = _find(root, "command")
    assert len(commands) == 1, f"expected one command in {line!r}"
    command = commands[0]
    name = command.child_by_field_name("command_name") or _first(command, "command_name")
    parsed = Parsed(cmdlet=_text(name), parameters=[], colon=set())
    elements = _first(command, "command_elements")
    if elements is None:
        return parsed
    for child in elements.children:
        if child.type == "command_parameter":
            parsed.parameters.append((_text(child).lstrip("-"), []))
        elif child.type == "command_argument_sep":
            if _text(child) == ":":
                parsed.colon.add(parsed.parameters[-1][0])
        else:
            assert parsed.parameters, f"positional argument in {line!r}"
            parsed.parameters[-1][1].extend(_arguments(child, line))
    return parsed


def _arguments(node: Node, line: str) -> list[str]:
    """Each element of an argument: a verbatim string, an integer or an allowed variable."""
    out = []
    for leaf in _leaves_of_interest(node):
        text = _text(leaf)
        if leaf.type == "verbatim_string_characters":
            out.append(text)
        elif leaf.type == "decimal_integer_literal":
            out.append(text)
        elif leaf.type == "variable":
            assert _ALLOWED_VARIABLES.fullmatch(text), f"variable {text} in {line!r}"
            out.append(text)
        else:
            raise AssertionError(f"unexpected {leaf.type} {text!r} in {line!r}")
    return out


def _leaves_of_interest(node: Node) -> list[Node]:
    kinds = {"verbatim_string_characters", "decimal_integer_literal", "variable"}
    if node.type in kinds:
        return [node]
    if node.child_count == 0:
        assert node.type == ",", f"unexpected token {node.type} {_text(node)!r}"
        return []
    out: list[Node] = []
    for child in node.children:
        out.extend(_leaves_of_interest(child))
    return out


def _find(node: Node, kind: str) -> list[Node]:
    found = [node] if node.type == kind else []
    for child in node.children:
        found.extend(_find(child, kind))
    return found


def _first(node: Node, kind: str) -> Node | None:
    for child in node.children:
        if child.type == kind:
            return child
    return None


def _text(node: Node | None) -> str:
    assert node is not None and node.text is not None
    return node.text.decode("utf-8")


def check_line(line: str) -> Parsed:
    """Both oracles on one command line; returns the tree-sitter view."""
    assert COMMAND_LINE.fullmatch(line), f"regex oracle refuses {line!r}"
    parsed = parse_command(line)
    regex_literals = re.findall(LITERAL, line)
    tree_literals = [a for _, args in parsed.parameters for a in args if a[0] in QUOTES]
    assert tree_literals == regex_literals, (tree_literals, regex_literals)
    return parsed
