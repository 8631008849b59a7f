"""`remediate diagnose`: which playbook applies to the events you have, and, against a live
endpoint, what a connector's queues say."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from remediate.core.env import Environment
from remediate.core.errors import RemediateError, UsageError
from remediate.core.status import ExitStatus

NAME = "diagnose"
DESCRIPTION = """\
Read MSExchangeTransport events 2016 and 2002 from pasted text, a file, or an export of the
Application log (wevtutil qe Application /q:"*[System[Provider[@Name='MSExchangeTransport']]]"
/f:xml, or Event Viewer's "Save as CSV"), group repeats, and print the playbook that applies
with its inputs prefilled. Records that cannot be read are listed, not dropped.
With --connector and a connection, also read the connector's smart-host queues and explain
their LastError, and check the smart hosts from the transport server itself (its WinRM
endpoint: Test-NetConnection, the Send protocol log), then from this machine.
With --since and a connection (and no FILE), scan the server's Application log (Get-WinEvent
on its WinRM endpoint) for 2016 and 2002 instead of a file."""
EPILOG = """\
examples:
  remediate diagnose events.xml
  remediate diagnose saved.csv --json
  wevtutil-output.txt | remediate diagnose -
  remediate diagnose --connector "Outbound to Relay" --profile ex01
  remediate diagnose --server EX01 --since 2h
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.remote.connections import add_connection_arguments

    parser.add_argument(
        "source", nargs="?", metavar="FILE", help="events file, or - for stdin (pasted text)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--connector", metavar="NAME", help="also diagnose this connector's queues (live)"
    )
    parser.add_argument(
        "--since",
        metavar="AGE",
        help="scan the server's Application log for events of the last AGE (30m, 2h, 1d) "
        "instead of reading a FILE",
    )
    parser.add_argument(
        "--winrm-url",
        metavar="URL",
        help="the server's default WinRM endpoint (default: the server on port 5985 or 5986, "
        "/wsman), opened with the same login",
    )
    add_connection_arguments(parser)


def run(args: argparse.Namespace, env: Environment) -> int:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.diagnose.events import (
        group,
        handled_text,
        parse_any,
        parse_file,
        read_event_stream,
    )
    from remediate.diagnose.intake import suggest

    since = parse_age(args.since) if args.since else None
    if since is not None and args.source is not None:
        raise UsageError("--since scans the server's Application log: give it without a FILE")
    if args.source is None and not args.connector and since is None:
        if not env.interactive:
            raise UsageError(
                "give an events FILE, - for stdin, --since AGE or --connector NAME with a "
                "connection"
            )
        env.err("Paste the event text, then Ctrl-D on an empty line:")
    report: dict[str, Any] = {"events": [], "problems": [], "queues": None}
    nothing_read = False
    if args.source is not None or not args.connector or since is not None:
        if since is not None:
            records = _server_events(args, env, since, report)
        elif args.source in (None, "-"):
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
            nothing_read = True
    if args.connector:
        report["queues"] = _live(args, env)
    if args.json:
        # lazy: a command module stays cheap to import (--help, completion); its work loads here
        from remediate.ui.jsonout import emit

        emit(env, report)
    else:
        _print(env, report)
    if nothing_read and not report["queues"] and since is not None:
        raise RemediateError(
            f"no event {handled_text()} in the Application log of "
            f"{report['scanned']['server']} in the last {args.since}",
            hint="give a longer --since, or check the other transport servers",
        )
    if nothing_read and not report["queues"]:
        raise RemediateError(
            f"no readable event {handled_text()} in the input",
            hint="copy the event with Event Viewer's 'Copy details as text', or export with "
            "wevtutil ... /f:xml",
        )
    return ExitStatus.SUCCESS


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
        "fields": r.fields,
        "computer": r.computer,
        "playbook": s.playbook_id,
        "inputs": s.inputs,
        "findings": list(s.findings),
        "commands": list(s.commands),
        "sources": s.group.sources,
    }


_AGE_UNITS = {"m": 60, "h": 3600, "d": 86400}


def parse_age(text: str) -> timedelta:
    """``30m``, ``2h``, ``1d`` (minutes, hours, days)."""
    value, unit = text.strip()[:-1], text.strip()[-1:].lower()
    if unit not in _AGE_UNITS or not value.isdigit() or not 0 < int(value) <= 100_000:
        raise UsageError(f"--since {text!r}: use a number and m, h or d (for example 2h)")
    return timedelta(seconds=int(value) * _AGE_UNITS[unit])


def _login(args: argparse.Namespace, env: Environment) -> tuple[Any, Any]:
    """The Exchange session (open) and the admin password (for the WinRM endpoint too)."""
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.remote.connections import connection_from_args
    from remediate.remote.login import admin_password
    from remediate.remote.session import Session

    connection = connection_from_args(args, env)
    password = admin_password(connection, env, password_stdin=args.password_stdin)
    session = Session(connection, password, env.err)
    session.open()
    return session, password


def _server_events(
    args: argparse.Namespace, env: Environment, since: timedelta, report: dict[str, Any]
) -> list[Any]:
    """The 2016/2002 events of the server's Application log since ``since`` ago (its WinRM
    endpoint: Get-WinEvent), read with the file intake's event model."""
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.core.errors import ConnectionFailed
    from remediate.diagnose.server_view import ServerView, open_view

    session, password = _login(args, env)
    with session:
        opened = open_view(session.connection, password, env.err, url=args.winrm_url)
    if not isinstance(opened, ServerView):
        raise ConnectionFailed(
            f"the server's Application log cannot be read: {opened.reason}",
            hint="export the events instead (wevtutil qe Application ... /f:xml) and give "
            "the file to remediate diagnose",
        )
    start = datetime.now(UTC).replace(tzinfo=None) - since
    with opened as view:
        records = view.events(since=start)
    report["scanned"] = {"server": opened.server, "since": f"{start:%Y-%m-%d %H:%M:%S}Z"}
    env.err(
        f"{len(records)} event(s) 2016/2002 in the Application log of {opened.server} "
        f"since {start:%Y-%m-%d %H:%M} UTC"
    )
    return list(records)


def _live(args: argparse.Namespace, env: Environment) -> dict[str, Any]:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.core.queuejson import queue_json
    from remediate.diagnose.checks import certificate
    from remediate.diagnose.escalation import local_causes
    from remediate.diagnose.reachability import FROM_HERE
    from remediate.diagnose.vantage import gather

    session, password = _login(args, env)
    with session:
        (connector,) = session.get_connectors(args.connector)
        queues = session.get_queues(connector)
        certificates = session.connector_certificates(connector)
        evidence = gather(session, password, connector, warn=env.err, winrm_url=args.winrm_url)
    # Unreachable from this machine is a cause only while the server's own view is missing;
    # a connection LastError the server's own test contradicts only needs a retry.
    checks = evidence.here if evidence.server_reaches is None else []
    stale = evidence.stale_queues(queues)
    causes = _server_causes(evidence)
    causes += local_causes(connector, [q for q in queues if q not in stale], checks)
    causes += [
        f"queue {q.identity}: its LastError blames the connection, but {evidence.server} "
        "connects now: retry the queue (Retry-Queue), no routing change"
        for q in stale
    ]
    return {
        "connector": connector.name,
        "enabled": connector.enabled,
        "port": connector.port,
        "smart_hosts": list(connector.smart_hosts),
        "queues": [queue_json(q) for q in queues],
        "reachability": {
            "checked_from": FROM_HERE,
            "hosts": [c.to_json() for c in evidence.here],
            "server_view": evidence.to_json(),
        },
        "local_causes": causes,
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
        elif item["event_id"] == 2002:
            env.out(f"  remote endpoint {item['remote_endpoint']}")
        else:
            fields = [f"{k} {v}" for k, v in item["fields"].items() if k != "connector"]
            env.out(f"  {', '.join(fields)}")
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


def _server_causes(evidence: Any) -> list[str]:
    return [
        f"smart host {c.host} port {c.port} does not answer from {c.server}"
        for c in evidence.server_checks
        if not c.succeeded
    ]


def _print_reachability(env: Environment, live: dict[str, Any]) -> None:
    view = live["reachability"]["server_view"]
    hosts = live["reachability"]["hosts"]
    if not hosts and not view["server_checks"]:
        return
    if view["server_checks"]:
        env.out(f"reachability from {view['server']} (the server that sends; Test-NetConnection):")
        for check in view["server_checks"]:
            state = "TCP connect succeeded" if check["tcp_succeeded"] else "TCP connect FAILED"
            if not check["resolved"]:
                state = "the name does not resolve"
            env.out(
                f"  {check['host']}:{check['port']}  {state} ({check['remote_address']}, "
                f"{check['elapsed_ms']:.0f} ms)"
            )
    elif view["server_view_note"]:
        env.out(f"note: {view['server_view_note']}")
    if hosts:
        env.out("reachability from this machine (DNS, TCP, SMTP banner):")
    for host in hosts:
        env.out(f"  {host['host']}:{host['port']}  {host['outcome']}: {host['meaning']}")
    for session in view["protocol_log"]:
        env.out(f"protocol log on {view['server']}, session {session['session']}:")
        env.out(f"  {session['outcome']}: {session['explanation']}")
    if view["protocol_log_note"]:
        env.out(f"protocol log on {view['server']}: {view['protocol_log_note']}")
    if view["unchecked_servers"]:
        env.out(
            f"not checked from {', '.join(view['unchecked_servers'])} (also source transport "
            "servers): run remediate diagnose there with --winrm-url"
        )
    env.out(f"verdict: {view['verdict']}")
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
