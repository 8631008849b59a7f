"""`remediate playbooks`: list the playbooks (id, event, one-line purpose)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from remediate.core.env import Environment
from remediate.core.status import ExitStatus

if TYPE_CHECKING:
    from remediate.core.playbooks import Playbook

NAME = "playbooks"
EPILOG = """\
examples:
  remediate playbooks
  remediate playbooks --json

Your own playbooks are read from $XDG_CONFIG_HOME/remediate/playbooks/*.yaml (see the
README, "Writing your own playbook").
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.ui.jsonout import add_json_argument

    add_json_argument(parser, "the list")


def run(args: argparse.Namespace, env: Environment) -> int:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.core.playbooks import load_all, user_dir
    from remediate.ui.jsonout import emit

    books = load_all()
    if args.json:
        emit(env, [playbook_json(b) for b in books])
        return ExitStatus.SUCCESS
    width = max(len(b.id) for b in books)
    env.out(f"{'EVENT':<6} {'PLAYBOOK':<{width}}  PURPOSE")
    for book in books:
        env.out(f"{book.event.id:<6} {book.id:<{width}}  {book.purpose}")
    mine = [b for b in books if b.source.parent == user_dir()]
    if mine:
        env.out(f"your own ({user_dir()}): " + ", ".join(str(b.event.id) for b in mine))
    return ExitStatus.SUCCESS


def playbook_json(book: Playbook) -> dict[str, Any]:
    return {
        "id": book.id,
        "event": book.event.id,
        "source": book.event.source,
        "title": book.title,
        "purpose": book.purpose,
        "inputs": [i.name for i in book.inputs],
        "file": str(book.source),
        "actions": [{"id": a.id, "text": a.text} for a in book.actions],
    }
