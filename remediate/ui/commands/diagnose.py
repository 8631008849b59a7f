"""`remediate diagnose`: which playbook applies to the events you have, and, against a live
endpoint, what a connector's queues say."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from remediate.core.env import Environment
from remediate.core.errors import RemediateError, UsageError

NAME = "diagnose"
HELP = "read event 2016/2002 records (text, wevtutil XML, CSV) and say which fix applies"
DESCRIPTION = """\
Read MSExchangeTransport events 2016 and 2002 from pasted text, a file, or an export of the
Application log (wevtutil qe Application /q:"*[System[Provider[@Name='MSExchangeTransport']]]"
/f:xml, or Event Viewer's "Save as CSV"), group repeats, and print the playbook that applies
with its inputs prefilled. Records that cannot be read are listed, not dropped.
With --connector and a connection, also read the connector's smart-host queues and explain
their LastError."""
EPILOG = """\
examples:
  remediate diagnose events.xml
  remediate diagnose saved.csv --json
  wevtutil-output.txt | remediate diagnose -
  remediate diagnose --connector "Outbound to Relay" --profile ex01
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from remediate.remote.connections import add_connection_arguments

    parser.add_argument(
        "source", nargs="?", metavar="FILE", help="events file, or - for stdin (pasted text)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--connector", metavar="NAME", help="also diagnose this connector's queues (live)"
    )
    add_connection_arguments(parser)


def run(args: argparse.Namespace, env: Environment) -> int:
    from remediate.diagnose.events import group, parse_any, parse_file, read_event_stream
    from remediate.diagnose.intake import suggest

    if args.source is None and not args.connector:
        if not env.interactive:
            raise UsageError(
                "give an events FILE, - for stdin, or --connector NAME with a connection"
            )
        env.err("Paste the event text, then Ctrl-D on an empty line:")
    report: dict[str, Any] = {"events": [], "problems": [], "queues": None}
    exit_code = 0
    if args.source is not None or not args.connector:
        if args.source in (None, "-"):
            records = parse_any(read_event_stream(env.stdin), "stdin")
        else:
            records = parse_file(Path(args.source))
        groups = group(records)
        readable = [suggest(g) for g in groups if g.record.ok]
        report["events"] = [_suggestion_json(s) for s in readable]
        report["problems"] = [
            {
                "source": g.record.source,
                "event_id": g.record.event_id,
                "problems": g.record.problems,
            }
            for g in groups
            if not g.record.ok
        ]
        if not readable:
            exit_code = 1
    if args.connector:
        report["queues"] = _live(args, env)
    if args.json:
        from remediate.ui.jsonout import emit

        emit(env, report)
    else:
        _print(env, report)
    if exit_code and not report["queues"]:
        raise RemediateError(
            "no readable event 2016 or 2002 in the input",
            hint="copy the event with Event Viewer's 'Copy details as text', or export with "
            "wevtutil ... /f:xml",
        )
    return 0


def _suggestion_json(s: Any) -> dict[str, Any]:
    r = s.record
    return {
        "event_id": r.event_id,
        "count": s.group.count,
        "first": s.group.first,
        "last": s.group.last,
        "connector": r.connector,
        "status": r.status,
        "mechanism": r.mechanism,
        "target_server": r.target_server,
        "user": r.user,
        "remote_endpoint": r.remote_endpoint,
        "computer": r.computer,
        "playbook": s.playbook_id,
        "inputs": s.inputs,
        "findings": list(s.findings),
        "commands": list(s.commands),
        "sources": s.group.sources,
    }


def _live(args: argparse.Namespace, env: Environment) -> dict[str, Any]:
    from remediate.core.queuejson import queue_json
    from remediate.diagnose.checks import certificate
    from remediate.diagnose.escalation import local_causes
    from remediate.diagnose.reachability import FROM_HERE, check_connector
    from remediate.remote.connections import connection_from_args
    from remediate.remote.session import open_session

    connection = connection_from_args(args, env)
    with open_session(connection, env, password_stdin=args.password_stdin) as session:
        (connector,) = session.get_connectors(args.connector)
        queues = session.get_queues(connector)
        certificates = session.connector_certificates(connector)
    checks = check_connector(connector)
    return {
        "connector": connector.name,
        "enabled": connector.enabled,
        "port": connector.port,
        "smart_hosts": list(connector.smart_hosts),
        "queues": [queue_json(q) for q in queues],
        "reachability": {"checked_from": FROM_HERE, "hosts": [c.to_json() for c in checks]},
        "local_causes": local_causes(connector, queues, checks),
        "certificate": [f.line() for f in certificate(connector, certificates)],
    }


def _print(env: Environment, report: dict[str, Any]) -> None:
    for item in report["events"]:
        when = _span(item["first"], item["last"])
        env.out(f"event {item['event_id']} x{item['count']}  connector {item['connector']!r}{when}")
        env.out(f"  playbook: {item['playbook']}")
        if item["event_id"] == 2016:
            env.out(
                f"  status {item['status']}, mechanism {item['mechanism']}, smart host "
                f"{item['target_server']}, user {item['user']}"
            )
        else:
            env.out(f"  remote endpoint {item['remote_endpoint']}")
        inputs = ", ".join(f"{k}={v}" for k, v in item["inputs"].items() if v is not None)
        env.out(f"  inputs: {inputs}")
        for finding in item["findings"]:
            env.out(f"  - {finding}")
        for command in item["commands"]:
            env.out(f"  next: {command}")
        env.out()
    for problem in report["problems"]:
        env.out(f"not read: {problem['source']}: {'; '.join(problem['problems'])}")
    live = report["queues"]
    if live is not None:
        state = "enabled" if live["enabled"] else "DISABLED"
        env.out(f"connector {live['connector']!r} ({state}): {len(live['queues'])} queue(s)")
        for queue in live["queues"]:
            env.out(
                f"  {queue['identity']}  {queue['status']}  {queue['message_count']} message(s)"
                f"  -> {queue['next_hop_domain']}"
            )
            if queue["last_error"]:
                env.out(f"    LastError: {queue['last_error']}")
                env.out(f"    cause: {queue['cause']}: {queue['explanation']}")
                env.out(f"    action: {queue['action']}")
        for line in live["certificate"]:
            env.out(f"  {line}")
        _print_reachability(env, live)


def _print_reachability(env: Environment, live: dict[str, Any]) -> None:
    hosts = live["reachability"]["hosts"]
    if not hosts:
        return
    env.out(f"reachability ({live['reachability']['checked_from']}):")
    for host in hosts:
        env.out(f"  {host['host']}:{host['port']}  {host['outcome']}: {host['meaning']}")
    causes = live["local_causes"]
    if causes:
        for cause in causes:
            env.out(f"  - {cause}")
    elif any(q["last_error"] for q in live["queues"]):
        env.out(
            "  nothing checked here explains the failure: escalate "
            "(remediate fix 2002 writes the escalation file)"
        )


def _span(first: Any, last: Any) -> str:
    if first is None:
        return ""
    if last is None or last == first:
        return f"  at {first:%Y-%m-%d %H:%M:%S}"
    return f"  {first:%Y-%m-%d %H:%M:%S} .. {last:%Y-%m-%d %H:%M:%S}"
