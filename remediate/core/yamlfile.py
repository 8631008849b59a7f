"""YAML files admins write (bulk files, wizard answers), read without surprises.

Before any node is built, one pass over the parser's events refuses what an input file has
no use for and what makes YAML explode: aliases (``*name``: the "billion laughs" bomb expands
a few lines into gigabytes), and nesting deeper than ``MAX_DEPTH``. Files are bounded in size
by their readers. Every refusal names its line.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

MAX_DEPTH = 32
# libyaml when built in (a few hundred rows parse in milliseconds), else pure Python; both
# keep each node's start line.
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class YamlProblem(Exception):
    """Why the file was not read, and the line (1-based)."""

    line: int
    message: str
    syntax: bool = False  # not YAML at all (``message`` is the parser's words)

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def compose(text: str) -> yaml.Node | None:
    """The single document of ``text`` as nodes; YamlProblem when it is not YAML, holds an
    alias, or nests too deep."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=Loader):
            if isinstance(event, yaml.AliasEvent):
                raise YamlProblem(
                    _line(event),
                    f"the alias *{event.anchor} is not accepted (aliases can blow a few lines "
                    "up to gigabytes); write the value out, or use defaults:",
                )
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise YamlProblem(_line(event), f"nested more than {MAX_DEPTH} levels deep")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        loader = Loader(text)
        try:
            return loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise YamlProblem(line, str(getattr(exc, "problem", None) or exc), syntax=True) from None


def duplicate_keys(node: yaml.MappingNode) -> list[YamlProblem]:
    """A problem for every key given a second time in this mapping (YAML would silently keep
    the last one)."""
    seen: dict[str, int] = {}
    problems = []
    for key_node, _ in node.value:
        key = str(key_node.value).strip().lower()
        line = key_node.start_mark.line + 1
        if key in seen:
            problems.append(YamlProblem(line, f"{key}: given twice (first on line {seen[key]})"))
        else:
            seen[key] = line
    return problems


def _line(event: yaml.Event) -> int:
    mark = event.start_mark
    return mark.line + 1 if mark is not None else 1
