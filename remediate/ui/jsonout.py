"""``--json``: one JSON document on stdout for scripts; the lines meant for a person (the
plan, progress, before/after) then go to stderr, so a pipe gets JSON only.

Every shape printed has a JSON Schema shipped in ``remediate/_schemas`` (``schema(name)``).
A refused run prints the ``error`` shape; exit statuses are the same with or without --json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from remediate.core.env import Environment

SCHEMAS = Path(__file__).parent.parent / "_schemas"


def add_json_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help=f"print {what} as one JSON document on stdout (the other lines go to stderr)",
    )


def wanted(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def for_people(env: Environment, args: argparse.Namespace) -> Environment:
    """``env`` itself, or with --json one whose stdout is stderr (the piped secrets already
    read stay read; a terminal to confirm on stays one)."""
    if not wanted(args):
        return env
    moved = dataclasses.replace(env, stdout=env.stderr, stdout_isatty=env.stdout_isatty)
    moved._stdin_lines = env._stdin_lines
    return moved


def emit(env: Environment, data: Any) -> None:
    """The document, ASCII-escaped (``\\uXXXX``): nothing in it can reach a terminal raw."""
    env.out(json.dumps(data, indent=2, default=str))
    env.json_sent = True


def error_json(message: str, hint: str | None, exit_code: int) -> dict[str, Any]:
    return {"error": message, "hint": hint, "exit_code": exit_code}


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema of shape ``name`` (``plan``, ``apply``, ``error``...)."""
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
