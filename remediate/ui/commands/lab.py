"""`remediate lab`: run the simulated Exchange organisation in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from remediate.core.env import Environment
from remediate.core.errors import UsageError
from remediate.core.status import ExitStatus

if TYPE_CHECKING:
    from remediate.lab.server import Lab

NAME = "lab"
DESCRIPTION = """\
Run a simulated Exchange organisation on this machine: an Exchange Management Shell endpoint
(WSMan + PSRP, configuration Microsoft.Exchange; NTLM with WinRM message encryption by
default, or Kerberos, Negotiate or Basic) and an SMTP smart host, seeded with Send connectors
that reproduce events 2016 and 2002. Runs until Ctrl-C.

The admin password is random per start and never printed: it is written, with everything a
client needs, to the ready file (mode 0600)."""
EPILOG = """\
examples:
  remediate lab
  remediate lab --ready-file lab.json --state lab-state.json
  remediate lab --tls --listen 127.0.0.1:5986 --ready-file lab.json
  remediate lab --reset            # back to the seeded scenario
  remediate lab --config-delay 0   # connector changes reach deliveries at once
  remediate lab --auth kerberos --keytab http.keytab   # Kerberos against your KDC
  remediate lab --auth basic       # Basic over plain http (only when asked for)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        default="127.0.0.1:0",
        help="where the /PowerShell endpoint listens (default 127.0.0.1, a free port)",
    )
    parser.add_argument(
        "--smtp-listen",
        metavar="HOST:PORT",
        default="127.0.0.1:0",
        help="where the SMTP smart host listens (default 127.0.0.1, a free port)",
    )
    parser.add_argument(
        "--state",
        metavar="FILE",
        type=Path,
        help="organisation state file (default: lab-state.json in the lab directory)",
    )
    parser.add_argument("--reset", action="store_true", help="restore the seeded organisation")
    parser.add_argument(
        "--auth",
        choices=["ntlm", "negotiate", "kerberos", "basic"],
        default="ntlm",
        help="how clients log in (default ntlm: NTLM with message encryption, no extra package; "
        "kerberos/negotiate need a keytab and the kerberos extra; basic only when asked for)",
    )
    parser.add_argument(
        "--keytab",
        metavar="FILE",
        type=Path,
        help="keytab with host/NAME (and HTTP/NAME) keys for kerberos/negotiate "
        "(default: $KRB5_KTNAME)",
    )
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a lab CA")
    parser.add_argument(
        "--ready-file",
        metavar="FILE",
        type=Path,
        help="write the connection details as JSON here once listening "
        "(default: lab.json in the lab directory)",
    )
    parser.add_argument(
        "--extra-connectors",
        type=int,
        metavar="N",
        default=0,
        help="also seed N healthy connectors ('Bulk Relay 001' ...) for bulk runs",
    )
    parser.add_argument(
        "--config-delay",
        type=float,
        metavar="SECONDS",
        default=2.0,
        help="seconds before a connector change reaches the lab's transport, as on Exchange "
        "(AD replication and a configuration reload; default 2, 0 for at once)",
    )
    parser.add_argument(
        "--cmdlet-latency",
        action="append",
        default=[],
        metavar="[CMDLET=]MS",
        help="milliseconds each cmdlet takes on the server (MS: every cmdlet; CMDLET=MS: that "
        "one; repeatable; default 0). Real servers spend 100-300 ms on an AD write",
    )
    parser.add_argument(
        "--max-shells",
        type=int,
        metavar="N",
        default=18,
        help="shells open at once per user (Exchange's PowerShellMaxConcurrency, default 18)",
    )
    parser.add_argument(
        "--max-commands-per-shell",
        type=int,
        metavar="N",
        default=1000,
        help="commands one shell runs in its life (MaxConcurrentCommandsPerShell, default 1000)",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow listening on a non-loopback address (the lab is not secure)",
    )
    parser.add_argument(
        "--deny-winrm",
        action="store_true",
        help="refuse the admin on the server's default WinRM endpoint (/wsman, "
        "Microsoft.PowerShell): Access is denied",
    )
    parser.add_argument(
        "--server-route",
        action="append",
        default=[],
        metavar="HOST:PORT=HOST:PORT",
        help="the server's own network path: connections EX01 makes to the first loopback "
        "address go to the second (repeatable; a closed port blocks the server only)",
    )
    testing = parser.add_argument_group("testing (fault injection)")
    testing.add_argument(
        "--fault-latency", type=float, metavar="SECONDS", default=0.0, help="delay every answer"
    )
    testing.add_argument("--fault-drop-on", type=int, metavar="N", help="drop request N")
    testing.add_argument("--fault-http-500-on", type=int, metavar="N", help="HTTP 500 on N")
    testing.add_argument("--fault-wsman-fault-on", type=int, metavar="N", help="WSMan fault on N")
    testing.add_argument("--fault-refuse-auth", action="store_true", help="refuse every login")


def _route(text: str) -> tuple[Any, Any]:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.lab.server import Address

    source, sep, target = text.partition("=")
    if not sep:
        raise UsageError(f"--server-route {text!r}: use HOST:PORT=HOST:PORT")
    return Address.parse(source, "--server-route"), Address.parse(target, "--server-route")


def lab_dir(env: Environment) -> Path:
    """Per-user lab directory: state_dir()/lab (remediate.core.paths)."""
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.core.paths import state_dir

    return state_dir(env.environ) / "lab"


def run(args: argparse.Namespace, env: Environment) -> int:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.lab.faults import Faults
    from remediate.lab.server import Address, CmdletLatency, Lab

    faults = Faults(
        latency=args.fault_latency,
        drop_on_request=args.fault_drop_on,
        http_500_on_request=args.fault_http_500_on,
        wsman_fault_on_request=args.fault_wsman_fault_on,
        refuse_auth=args.fault_refuse_auth,
    )
    directory = lab_dir(env)
    if args.keytab is not None:
        if not args.keytab.is_file():
            raise UsageError(f"--keytab {args.keytab}: no such file")
        # libkrb5 reads the acceptor's keys from KRB5_KTNAME (this process is the lab only)
        os.environ["KRB5_KTNAME"] = f"FILE:{args.keytab.resolve()}"
    ready_file: Path = args.ready_file or directory / "lab.json"
    lab = Lab(
        listen=Address.parse(args.listen, "--listen"),
        smtp_listen=Address.parse(args.smtp_listen, "--smtp-listen"),
        state_file=args.state or directory / "lab-state.json",
        reset=args.reset,
        tls=args.tls,
        allow_remote=args.allow_remote,
        extra_connectors=args.extra_connectors,
        config_delay=args.config_delay,
        faults=faults,
        workdir=directory,
        auth=args.auth,
        cmdlet_latency=CmdletLatency.parse(args.cmdlet_latency),
        max_shells_per_user=args.max_shells,
        max_commands_per_shell=args.max_commands_per_shell,
        deny_winrm=args.deny_winrm,
        server_routes=dict(_route(text) for text in args.server_route),
    )
    if not (lab.listen.is_loopback and lab.smtp_listen.is_loopback):
        env.err(
            "remediate lab: WARNING: listening beyond loopback; anyone who can reach this "
            "machine can try the lab's admin account"
        )
    stop = threading.Event()
    # Ctrl-C and SIGTERM both stop the lab, even when started from a shell that ignores SIGINT
    # in background jobs.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    lab.start()
    try:
        lab.write_ready_file(ready_file)
        _announce(env, lab, ready_file)
        stop.wait()
    except KeyboardInterrupt:
        env.out("remediate lab: stopping")
    finally:
        # A second Ctrl-C must not leave the ready file (with its password) behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        ready_file.unlink(missing_ok=True)
        lab.stop()
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)
    env.out("remediate lab: stopped")
    return ExitStatus.SUCCESS


_AUTH_NAMES = {
    "ntlm": "NTLM",
    "negotiate": "Negotiate: Kerberos or NTLM",
    "kerberos": "Kerberos",
    "basic": "Basic authentication",
}


def _auth_label(lab: Lab) -> str:
    text = _AUTH_NAMES[str(lab.auth)]
    if str(lab.auth) != "basic" and not lab.tls:
        text += ", WinRM message encryption"
    return text


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _announce(env: Environment, lab: Lab, ready_file: Path) -> None:
    env.out(f"remediate lab: Exchange Management Shell endpoint {lab.endpoint_url}")
    env.out(f"  configuration: Microsoft.Exchange ({_auth_label(lab)})")
    denied = " (the admin is denied: --deny-winrm)" if lab.deny_winrm else ""
    env.out(f"  server WinRM:  {lab.winrm_url} (Microsoft.PowerShell){denied}")
    env.out(f"  admin user:    {lab.admin_user}")
    env.out(f"  credentials:   {ready_file} (mode 0600; password never printed)")
    if lab.tls and lab.ca_file:
        env.out(f"  CA file:       {lab.ca_file}")
    env.out(f"  smart host:    smtp://{lab.smtp_address.url_host()}:{lab.smtp_address.port}")
    env.out(f"  state:         {lab.state_file}")
    env.out(f"  config delay:  {lab.config_delay:g} s before a connector change reaches deliveries")
    env.out("Press Ctrl-C to stop.")
    env.stdout.flush()
