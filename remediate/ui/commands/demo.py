"""`remediate demo`: the lab in the background of this process, and the wizard against its
seeded 2016 connector (the lab's relay account is the right answer)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from remediate.core.env import Environment

if TYPE_CHECKING:
    from remediate.lab.server import Lab
    from remediate.remote.connections import Connection

NAME = "demo"
DESCRIPTION = """\
Start the simulated Exchange lab inside this process (temporary state, free loopback ports),
then run the guided fix (remediate fix 2016) against its connector 'Outbound to Relay', whose
credential was wiped: event 2016, three messages stuck in Retry. Answer the wizard (the lab's
relay account is offered as a password source) and watch the queue drain into the lab's SMTP
smart host. No keyring is needed: without one the wizard asks for passwords and does not
offer to save them. The demo's backup and audit entry go to a new temporary directory (named
in the summary, removed at the end unless --keep), not to the audit log of real changes. With
--answers FILE it runs without a terminal."""
EPILOG = """\
examples:
  remediate demo
  remediate demo --answers demo-answers.yaml
  remediate demo --keep
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.ui.commands.fix import add_wizard_arguments

    add_wizard_arguments(parser)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the demo's temporary directory (its backup and audit entry) at the end",
    )


def lab_connection(lab: Lab) -> Connection:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    from remediate.remote.connections import AuthMethod, Connection

    return Connection(
        server=lab.host,
        port=lab.port,
        path="/PowerShell",
        scheme="http",
        auth=AuthMethod(str(lab.auth)),  # NTLM with message encryption: no extra package
        username=lab.admin_user,
        profile="lab (demo)",
    )


def demo_environment(env: Environment) -> tuple[Environment, Path]:
    """The demo's backups and audit entries go to a directory of their own (removed at the
    end unless --keep), never into the audit log of real changes."""
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    import dataclasses
    import tempfile

    records = Path(tempfile.mkdtemp(prefix="remediate-demo-"))
    changed = dataclasses.replace(env, environ={**env.environ, "XDG_STATE_HOME": str(records)})
    return changed, records


def run(args: argparse.Namespace, env: Environment) -> int:
    # lazy: a command module stays cheap to import (--help, completion); its work loads here
    import shutil

    from remediate.lab.seed import RELAY
    from remediate.lab.server import Lab
    from remediate.ui.commands.fix import event_text, make_prompter
    from remediate.ui.wizard.context import WizardOptions
    from remediate.ui.wizard.flow import run_wizard

    prompter = make_prompter(args, env, NAME)  # no terminal, no answers: exit 2 before the lab
    text = event_text(args)
    env, records = demo_environment(env)
    try:
        env.out("Starting the lab (simulated Exchange and SMTP smart host on loopback) ...")
        with Lab() as lab:
            env.out(f"Lab endpoint {lab.endpoint_url}; smart host {lab.smtp_address.port}/tcp.")
            env.out(f"Seeded problem: event 2016 on Send connector '{RELAY}'.")
            env.out()
            options = WizardOptions(
                playbook=None if args.event_file else "2016",
                event_text=text,
                connector=args.connector or RELAY,
                connection=lab_connection(lab),
                admin_password=lab.admin_password,
                lab_relay=(lab.relay_user, lab.relay_password),
                probe_ca_file=args.probe_ca_file or lab.ca_file,
                queue_wait=args.queue_wait,
                demo=True,
                winrm_url=lab.winrm_url,
            )
            status = run_wizard(env, prompter, options)
            received = lab.smart_host.messages
            env.out(f"The lab's smart host has received {len(received)} message(s).")
        env.out("Lab stopped; its temporary state is gone.")
    finally:
        if args.keep:
            env.out(f"Kept the demo's backup and audit log in {records} (--keep).")
        else:
            shutil.rmtree(records, ignore_errors=True)
            env.out(f"Removed the demo's backup and audit log ({records}); --keep keeps them.")
    return status
