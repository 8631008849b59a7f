"""`remediate show`: the Send connectors as Exchange reports them (table or JSON)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence

from remediate.core.env import Environment
from remediate.core.exchange import QueueInfo, SendConnector
from remediate.core.queuejson import queue_json
from remediate.core.status import ExitStatus
from remediate.run.report import connector_table, table

NAME = "show"
EPILOG = """\
examples:
  remediate show --profile ex01
  remediate show --server https://ex01.contoso.com/PowerShell --auth kerberos
  remediate show --connector "Outbound to Relay" --queues
  remediate show --json > connectors.json
"""

QUEUE_COLUMNS = ("CONNECTOR", "QUEUE", "STATUS", "MESSAGES", "CAUSE", "LAST ERROR")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.remote.connections import add_connection_arguments

    add_connection_arguments(parser)
    parser.add_argument("--connector", metavar="NAME", help="only this Send connector")
    parser.add_argument(
        "--json", action="store_true", help="print a JSON list (Exchange property names)"
    )
    parser.add_argument(
        "--queues",
        action="store_true",
        help="also show each connector's smart-host queue: status, messages, the cause "
        "read in LastError, LastError",
    )


def run(args: argparse.Namespace, env: Environment) -> int:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate import api
    from remediate.remote.connections import connection_from_args
    from remediate.ui.commands.changing import open_handle

    connection = connection_from_args(args, env)
    password_stdin = bool(getattr(args, "password_stdin", False))
    with open_handle(connection, env, password_stdin=password_stdin, lock=()) as handle:
        connectors = api.read_connectors(handle, args.connector)
        queues = {c.name: api.queues(handle, c) for c in connectors} if args.queues else None
    if args.json:
        env.out(json.dumps(connectors_json(connectors, queues), indent=2))
        return ExitStatus.SUCCESS
    for line in connector_table(connectors):
        env.out(line)
    if queues is not None:
        env.out()
        for line in queue_table(queues):
            env.out(line)
    return ExitStatus.SUCCESS


def connectors_json(
    connectors: Sequence[SendConnector], queues: Mapping[str, list[QueueInfo]] | None
) -> list[dict[str, object]]:
    """SendConnector.to_json() for each (Exchange's property names); with queues, a
    "queues" list added to each (lower case: not an Exchange property; schema ``queue``)."""
    out: list[dict[str, object]] = []
    for connector in connectors:
        item: dict[str, object] = connector.to_json()
        if queues is not None:
            item["queues"] = [queue_json(q) for q in queues.get(connector.name, [])]
        out.append(item)
    return out


def queue_table(queues: Mapping[str, list[QueueInfo]]) -> list[str]:
    rows = [
        (name, q.identity, q.status, str(q.message_count), _cause(q), q.last_error or "-")
        for name, found in queues.items()
        for q in found
    ]
    if not rows:
        return ["No smart-host queues for these connectors (nothing waiting)."]
    return table(QUEUE_COLUMNS, rows)


def _cause(q: QueueInfo) -> str:
    """The cause remediate reads in LastError (see `remediate diagnose`), or "-"."""
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.core.last_error import parse_last_error

    found = parse_last_error(q.last_error)
    return str(found.cause) if found else "-"
