"""`remediate playbooks`: list the playbooks (id, event, one-line purpose)."""

from __future__ import annotations

import argparse

from remediate.env import Environment

NAME = "playbooks"
HELP = "list the playbooks (event, id, purpose)"
EPILOG = """\
examples:
  remediate playbooks
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options: the list is short."""


def run(args: argparse.Namespace, env: Environment) -> int:
    from remediate.playbooks import load_all

    books = load_all()
    width = max(len(b.id) for b in books)
    env.out(f"{'EVENT':<6} {'PLAYBOOK':<{width}}  PURPOSE")
    for book in books:
        env.out(f"{book.event.id:<6} {book.id:<{width}}  {book.purpose}")
    return 0
