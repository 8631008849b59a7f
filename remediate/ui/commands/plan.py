"""`remediate plan`: the dry run. Builds the plan offline and prints (or writes) the script."""

from __future__ import annotations

import argparse
from pathlib import Path

from remediate.core.env import Environment
from remediate.core.status import ExitStatus

NAME = "plan"
DESCRIPTION = """\
Build the plan for one Send connector from a playbook and the fix options, check it against
Exchange's rules, and print it as a script for the Exchange Management Shell. Nothing is sent
anywhere; the connector is not read, so the script carries every setting given.
Options a playbook does not take are refused (see 'remediate playbooks')."""
EPILOG = """\
examples:
  remediate plan 2016 --connector "Outbound to Relay" --mechanism BasicAuthRequireTLS \\
      --username relay@contoso.com --smart-host smtp.relay.example --port 587
  remediate plan smarthost-auth-credential --connector "Outbound to Relay" \\
      --username relay@contoso.com --what-if
  remediate plan 2002 --connector "Outbound to Partner" --smart-host mx.partner.example \\
      --port 25 --enable --output fix.ps1
  remediate plan 2002 --connector "Outbound to Partner" --port 25 --enable --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.ui.fix_arguments import add_fix_arguments
    from remediate.ui.jsonout import add_json_argument

    parser.add_argument("playbook", metavar="PLAYBOOK", help="event number (2016, 2002) or id")
    parser.add_argument(
        "--connector", metavar="NAME", required=True, help="the Send connector's name"
    )
    parser.add_argument(
        "--what-if", action="store_true", help="add -WhatIf to every change (Exchange only reports)"
    )
    parser.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        type=Path,
        help="write the script to FILE instead of stdout",
    )
    add_fix_arguments(parser)
    add_json_argument(parser, "the plan (its steps as data)")


def run(args: argparse.Namespace, env: Environment) -> int:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate import api
    from remediate.core.files import write_script
    from remediate.core.playbooks import find
    from remediate.render.script import render_script
    from remediate.ui.commands.changing import settings
    from remediate.ui.fix_arguments import fix_options_from_args

    playbook = find(args.playbook)
    options = fix_options_from_args(args)
    plan = api.plan(None, playbook, options.connector, what_if=args.what_if, **settings(options))
    script = render_script(plan)
    if args.output is not None:
        write_script(args.output, script, what="--output")
        env.err(f"wrote {args.output} ({len(plan.steps)} steps, {len(plan.changes)} changes)")
    if args.json:
        # lazy: a command module stays cheap to import (--help, completion); its work loads here
        from remediate.run.backup import plan_to_json
        from remediate.ui.jsonout import emit

        output = None if args.output is None else str(args.output)
        emit(env, {**plan_to_json(plan), "output": output})
    elif args.output is None:
        env.write(script)
    return ExitStatus.SUCCESS
