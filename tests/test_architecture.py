"""The house rules the linters do not check: no import cycle among remediate's modules,
and no import inside a function unless a ``# lazy:`` comment says why.

import-linter's contracts (pyproject.toml) keep the layers pointing one way; inside a layer
two modules could still import each other. This walks every import of every module (inside
functions and under TYPE_CHECKING too) and fails on any cycle, naming it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "remediate"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(kept + ([node.module] if node.module else []))
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.append(full if full in modules else base)
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            graph[name] |= {t for t in targets if t in modules and t not in (name, "remediate")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def _unexplained_local_imports(path: Path) -> list[int]:
    """Lines of the function-local import groups with no ``# lazy:`` comment above them or
    on their first line."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    found = []
    for function in ast.walk(ast.parse(text)):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            for stmts in (getattr(node, f, None) for f in ("body", "orelse", "finalbody")):
                if not isinstance(stmts, list):
                    continue
                for i, stmt in enumerate(stmts):
                    if not isinstance(stmt, (ast.Import, ast.ImportFrom)):
                        continue
                    if i and isinstance(stmts[i - 1], (ast.Import, ast.ImportFrom)):
                        continue  # the group's first import carries the comment
                    above = lines[stmt.lineno - 2].strip() if stmt.lineno >= 2 else ""
                    if not above.startswith("# lazy:") and "# lazy:" not in lines[stmt.lineno - 1]:
                        found.append(stmt.lineno)
    return sorted(set(found))


def test_imports_inside_functions_say_why() -> None:
    # Imports belong at the top; the ones kept inside a function keep start-up lazy (--help,
    # tab completion) or an optional extra optional, and a comment says which.
    unexplained = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line in _unexplained_local_imports(path)
    ]
    assert unexplained == [], "function-local imports without '# lazy:': " + ", ".join(unexplained)


def test_the_lazy_rule_sees_an_unexplained_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "def f():\n    import json\n\n\ndef g():\n    # lazy: why\n    import json\n"
    )
    assert _unexplained_local_imports(module) == [2]


def test_no_module_imports_itself_back() -> None:
    cycles = _cycles(_graph())
    assert cycles == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
