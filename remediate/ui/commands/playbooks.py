"""`remediate playbooks`: list the playbooks (id, event, one-line purpose)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from remediate.core.env import Environment

if TYPE_CHECKING:
    from remediate.core.playbooks import Playbook

NAME = "playbooks"
HELP = "list the playbooks (event, id, purpose)"
EPILOG = """\
examples:
  remediate playbooks
  remediate playbooks --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from remediate.ui.jsonout import add_json_argument

    add_json_argument(parser, "the list")


def run(args: argparse.Namespace, env: Environment) -> int:
    from remediate.core.playbooks import load_all
    from remediate.ui.jsonout import emit

    books = load_all()
    if args.json:
        emit(env, [playbook_json(b) for b in books])
        return 0
    width = max(len(b.id) for b in books)
    env.out(f"{'EVENT':<6} {'PLAYBOOK':<{width}}  PURPOSE")
    for book in books:
        env.out(f"{book.event.id:<6} {book.id:<{width}}  {book.purpose}")
    return 0


def playbook_json(book: Playbook) -> dict[str, Any]:
    return {
        "id": book.id,
        "event": book.event.id,
        "source": book.event.source,
        "title": book.title,
        "purpose": book.purpose,
        "inputs": [i.name for i in book.inputs],
        "actions": [{"id": a.id, "text": a.text} for a in book.actions],
    }
