"""`remediate fix`: the guided wizard (questionary), or the same run from an answers file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from remediate.core.env import Environment
from remediate.core.errors import NotInteractiveError, UsageError

if TYPE_CHECKING:
    from remediate.ui.wizard.prompter import Prompter

NAME = "fix"
DESCRIPTION = """\
Walk through every documented action for the event until mail flows again: read the event
(number, or pasted text that prefills the answers), choose the connection and the Send
connector, diagnose (configuration, an SMTP probe of the smart host from this machine,
reachability), choose the fix, preview the exact PowerShell, apply it (with -WhatIf first if
you like) with a backup, then retry the queue and watch it drain; undo is offered when it
does not. Needs a terminal, or --answers FILE (passwords then come from stdin, one a line).
Exit status: 0 fixed (or nothing to change, or script saved), 1 cancelled, 2 bad input or no
terminal, 5 connection failed, 6 a step failed or the queue still fails, 7 whether mail flows
is not known, 130 interrupted."""
EPILOG = """\
examples:
  remediate fix 2016 --profile ex01
  remediate fix --event-file event.txt --profile ex01
  printf '%s\\n%s\\n%s\\n' "$ADMIN_PW" "$RELAY_PW" "$RELAY_PW" | \\
      remediate fix 2016 --profile ex01 --answers answers.yaml
"""
NO_TERMINAL = (
    "remediate fix is interactive and there is no terminal to ask on "
    "(stdin and stdout must be a terminal)"
)
NO_TERMINAL_HINT = (
    "for scripted runs use 'remediate plan' / 'remediate apply', or 'remediate fix "
    "--answers FILE' (YAML with the same answers)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.remote.connections import add_connection_arguments

    parser.add_argument(
        "playbook", metavar="EVENT", nargs="?", help="event number (2016, 2002) or playbook id"
    )
    add_wizard_arguments(parser)
    parser.add_argument(
        "--winrm-url",
        metavar="URL",
        help="the server's default WinRM endpoint for its own view (default: the server on "
        "port 5985 or 5986, /wsman), opened with the same login",
    )
    add_connection_arguments(parser)


def add_wizard_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--event-file", metavar="FILE", type=Path, help="the event's text (prefills the answers)"
    )
    parser.add_argument("--connector", metavar="NAME", help="preselect this Send connector")
    parser.add_argument(
        "--answers", metavar="FILE", type=Path, help="YAML answers: run without a terminal"
    )
    parser.add_argument(
        "--queue-wait",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="how long to watch the queue after Retry-Queue (default 20)",
    )
    parser.add_argument(
        "--probe-ca-file",
        metavar="PEM",
        type=Path,
        help="CA bundle to judge the smart host's certificate chain (the name is always checked)",
    )


def make_prompter(args: argparse.Namespace, env: Environment, command: str = NAME) -> Prompter:
    """Questionary on a terminal, the answers file when given; else exit 2 at once (the
    error names ``command``: ``fix`` or ``demo``)."""
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.ui.wizard.prompter import AnswersPrompter, QuestionaryPrompter

    if args.answers is not None:
        # lazy: a command module stays cheap to import (--help, completion); its work loads here
        from remediate.core.answers import AnswersError, load
        from remediate.ui.wizard import answer_keys

        try:
            answers = load(args.answers, answer_keys())
        except AnswersError as bad:
            for line in bad.lines():
                env.err(line)
            raise
        return AnswersPrompter(answers, env, str(args.answers))
    if not env.interactive:
        if command == NAME:
            raise NotInteractiveError(NO_TERMINAL, hint=NO_TERMINAL_HINT)
        raise NotInteractiveError(
            NO_TERMINAL.replace("remediate fix", f"remediate {command}"),
            hint=f"for a run without a terminal use 'remediate {command} --answers FILE' "
            "(YAML with the same answers)",
        )
    return QuestionaryPrompter()


def event_text(args: argparse.Namespace) -> str | None:
    """The --event-file as text, read as ``diagnose`` reads it (bounded, one decoder)."""
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.diagnose.events import read_event_file

    if args.event_file is None:
        return None
    return read_event_file(args.event_file, f"--event-file {args.event_file}")


def run(args: argparse.Namespace, env: Environment) -> int:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.ui.wizard.context import WizardOptions
    from remediate.ui.wizard.flow import run_wizard

    prompter = make_prompter(args, env)
    if args.queue_wait < 0:
        raise UsageError("--queue-wait must be 0 or more seconds")
    connection = None
    if args.profile or args.server:
        # lazy: a command module stays cheap to import (--help, completion); its work loads here
        from remediate.remote.connections import connection_from_args

        connection = connection_from_args(args, env)
    options = WizardOptions(
        playbook=args.playbook,
        event_text=event_text(args),
        connector=args.connector,
        connection=connection,
        probe_ca_file=args.probe_ca_file,
        queue_wait=args.queue_wait,
        winrm_url=args.winrm_url,
    )
    return run_wizard(env, prompter, options)
